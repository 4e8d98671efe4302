"""What ``otelgw top``, the status page and ``zpages`` show: one JSON snapshot of the running gateway.

``GET /api/stats`` answers with:

- ``gateway``: uptime, resident memory next to the memory_limiter limits, event-loop lag, config generation;
- ``components``: for each receiver, processor, exporter and connector, the totals of its self-metrics (items
  in and out, refused, dropped by reason, queue size and capacity, send latency, failures) and per-second rates
  over the last sampling seconds (items in and out, dropped, refused, failed), its error rate (the share of the
  items that reached it in those seconds that it refused or failed to send), and its health;
- ``graph``: nodes and edges of the running pipelines (processors once per pipeline, as they run);
- ``kpis``: the last values the ``kpi`` connectors emitted, each with its recent history for a sparkline;
- ``errors``: the most recent error log lines (already redacted);
- ``config``: the effective configuration with every secret replaced by ``<redacted>``.

Everything comes from the self-metrics registry, sampled once per second by one task: a snapshot costs the
request nothing on the data path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway._host.redact import MASK, is_secret_key, redact
from gateway.component import Kind

if TYPE_CHECKING:
    from gateway._host.graph import Graph
    from gateway._host.telemetry import Telemetry
    from gateway.host import Host

__all__ = ["ErrorLog", "KpiBoard", "Stats", "effective_config", "kpi_board"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#: Samples kept for rates and sparklines: 5 minutes at one per second.
HISTORY = 300


def effective_config(raw: Any, path: tuple[str, ...] = ()) -> Any:
    """``raw`` (the merged configuration) with the values under secret keys masked and any known secret redacted."""
    if isinstance(raw, Mapping):
        return {str(k): effective_config(v, (*path, str(k))) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        if is_secret_key(path):
            return [MASK for _ in raw]
        return [effective_config(v, path) for v in raw]
    if is_secret_key(path) and raw not in (None, ""):
        return MASK
    return redact(raw) if isinstance(raw, str) else raw


class ErrorLog(logging.Handler):
    """Keeps the last error (and warning) lines of the ``otelgw`` loggers for the status page, redacted."""

    def __init__(self, size: int = 50) -> None:
        super().__init__(logging.WARNING)
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            error = getattr(record, "error", None)
            if error:
                message += f": {error}"
            self.records.append({
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
                "level": record.levelname.lower(), "logger": record.name,
                "component": getattr(record, "component", None), "msg": redact(message)})
        except Exception:  # a status page must not break logging
            self.handleError(record)


@dataclass
class KpiBoard:
    """Latest value of each KPI series the ``kpi`` connectors emitted, and its recent history."""

    series: dict[tuple[str, str, str], collections.deque[tuple[float, float]]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def record(self, connector: str, batch: Any) -> None:
        """Called at each flush with the metrics batch built (once per flush interval, off the hot path)."""
        now = time.time()
        for rm in batch.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    data = metric.WhichOneof("data")
                    if data is None:
                        continue
                    self.units[metric.name] = metric.unit
                    for point in getattr(metric, data).data_points:
                        labels = ",".join(f"{a.key}={_any_text(a.value)}" for a in point.attributes)
                        if point.flags & _NO_RECORDED_VALUE:  # the series ended (a ratio's window emptied)
                            self.series.pop((connector, metric.name, labels), None)
                            continue
                        value = _point_value(data, point)
                        if value is None:
                            continue
                        key = (connector, metric.name, labels)
                        history = self.series.get(key)
                        if history is None:
                            if len(self.series) >= 2000:  # a board, not a time-series store
                                continue
                            history = self.series[key] = collections.deque(maxlen=120)
                        history.append((now, value))

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for (connector, name, labels), history in sorted(self.series.items()):
            out.append({"connector": connector, "name": name, "labels": labels, "unit": self.units.get(name, ""),
                        "value": history[-1][1], "at": history[-1][0], "history": [v for _, v in history]})
        return out


def resident_bytes() -> int:
    """Resident memory of this process (what the OOM killer and the memory_limiter count); 0 without /proc."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _any_text(value: Any) -> str:
    kind = value.WhichOneof("value")
    return "" if kind is None else str(getattr(value, kind))


def _point_value(data: str, point: Any) -> float | None:
    if data in ("gauge", "sum"):
        return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)
    if data == "histogram":  # p95 from the buckets: the upper bound of the bucket holding the 95th percentile
        if not point.count:
            return None
        target = point.count * 0.95
        seen = 0
        for i, count in enumerate(point.bucket_counts):
            seen += count
            if seen >= target:
                bounds = point.explicit_bounds
                return float(bounds[i]) if i < len(bounds) else float(point.max if point.HasField("max") else
                                                                      (bounds[-1] if bounds else 0.0))
        return None
    return None


_boards: dict[int, KpiBoard] = {}


def kpi_board(telemetry: Telemetry) -> KpiBoard:
    """The KPI board of the gateway that owns ``telemetry`` (one per gateway, several gateways per test process)."""
    board = _boards.get(id(telemetry.registry))
    if board is None:
        board = _boards[id(telemetry.registry)] = KpiBoard()
    return board


#: Counters by family name (or a name's start, ending in "_", for one family per signal: spans, metric points, log
#: records) → the component kind, whose label names the component, and the totals each sample adds to. An item a
#: receiver accepted went in and came out; one an exporter failed to send went in and was an error.
_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "otelcol_receiver_accepted_": ("receiver", ("out", "in")),
    "otelcol_receiver_refused_": ("receiver", ("refused", "in")),
    "otelgw_receiver_bad_requests": ("receiver", ("errors",)),
    "otelcol_processor_refused_": ("processor", ("refused",)),
    "otelcol_processor_incoming_items": ("processor", ("in",)),
    "otelcol_processor_outgoing_items": ("processor", ("out",)),
    "otelcol_exporter_sent_": ("exporter", ("out", "in")),
    "otelcol_exporter_send_failed_": ("exporter", ("errors", "in")),
    "otelcol_exporter_enqueue_failed_": ("exporter", ("refused", "in")),
    "otelcol_connector_consumed_items": ("connector", ("in",)),
    "otelcol_connector_produced_items": ("connector", ("out",)),
    "otelgw_connector_flush_failed_metric_points": ("connector", ("errors",)),
}
#: Samples of exporter gauges and of the send-duration histogram's sum and count → the total they are read into.
_EXPORTER_VALUES = {"otelcol_exporter_queue_size": "queue_size", "otelcol_exporter_queue_capacity": "queue_capacity",
                    "otelgw_exporter_send_duration_seconds_sum": "latency_sum",
                    "otelgw_exporter_send_duration_seconds_count": "latency_count"}


def _counter(name: str) -> tuple[str, tuple[str, ...]] | None:
    counter = _COUNTERS.get(name)
    if counter is None:
        for start, found in _COUNTERS.items():
            if start.endswith("_") and name.startswith(start):
                return found
    return counter


def _totals(telemetry: Telemetry) -> dict[str, dict[str, Any]]:
    """Per component id: counter totals read from the self-metrics registry."""
    out: dict[str, dict[str, Any]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for family in telemetry.registry.collect():
        name = family.name
        counter = _counter(name)
        for sample in family.samples:
            labels = sample.labels
            if counter is not None:
                if sample.name.endswith("_total"):
                    kind, keys = counter
                    totals = out[f"{kind}:{labels[kind]}"]
                    for key in keys:
                        totals[key] += sample.value
            elif sample.name in _EXPORTER_VALUES:
                out["exporter:" + labels["exporter"]][_EXPORTER_VALUES[sample.name]] += sample.value
            elif name == "otelgw_component_dropped_items" and sample.name.endswith("_total"):
                # The label is the id without the kind: it goes to every component of that id (merged below).
                out["*:" + labels["component"]]["dropped:" + labels["reason"]] += sample.value
    return out


class Stats:
    """Samples the registry every second and answers ``GET /api/stats``."""

    def __init__(self, telemetry: Telemetry, host: Host, graph: Callable[[], Graph], raw_config: Callable[[], Any],
                 generation: Callable[[], int], taps: Callable[[], int] = lambda: 0) -> None:
        self.telemetry = telemetry
        self.host = host
        self._graph = graph
        self._raw_config = raw_config
        self._generation = generation
        self._taps = taps
        self.started = time.time()
        self.errors = ErrorLog()
        self.kpis = kpi_board(telemetry)
        self._samples: collections.deque[tuple[float, dict[str, dict[str, Any]]]] = collections.deque(maxlen=3)
        self._lag_ms = 0.0
        self._lag_history: collections.deque[float] = collections.deque(maxlen=HISTORY)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        logging.getLogger("otelgw").addHandler(self.errors)
        self._samples.append((time.monotonic(), _totals(self.telemetry)))
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="stats sampler")

    async def stop(self) -> None:
        logging.getLogger("otelgw").removeHandler(self.errors)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        """Every second: sample the counters; the lateness of the wake-up is the event loop's lag."""
        interval = 1.0
        while True:
            planned = time.monotonic() + interval
            await asyncio.sleep(interval)
            woke = time.monotonic()
            self._lag_ms = max(0.0, (woke - planned) * 1000.0)
            self._lag_history.append(self._lag_ms)
            try:
                self._samples.append((woke, _totals(self.telemetry)))
            except Exception:  # a broken metric must not stop the sampler
                logging.getLogger("otelgw.service").exception("stats sampling failed")

    def _memory(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rss_bytes": resident_bytes()}
        for node in self._graph().nodes:
            if node.kind is not Kind.PROCESSOR or node.id.type != "memory_limiter":
                continue
            limits = getattr(getattr(node.component, "guard", node.component), "limits", None)
            if limits is not None:
                out["limit_bytes"] = limits.hard
                out["soft_limit_bytes"] = limits.soft
                break
        return out

    def components(self) -> list[dict[str, Any]]:
        graph = self._graph()
        now_t, now = self._samples[-1]
        then_t, then = self._samples[0] if len(self._samples) > 1 else (now_t, now)
        seconds = max(now_t - then_t, 1e-9)
        status = self.host.component_status()
        by_id: dict[str, dict[str, Any]] = {}
        for node in graph.nodes:
            key = f"{node.kind.value}:{node.id}"
            entry = by_id.get(key)
            if entry is None:
                entry = by_id[key] = {"id": str(node.id), "kind": node.kind.value, "type": node.id.type,
                                      "signals": [], "pipelines": [], "status": "ok", "error": None}
            signal = node.signal.value if node.out_signal is None else f"{node.signal.value}->{node.out_signal.value}"
            if signal not in entry["signals"]:
                entry["signals"].append(signal)
            if node.pipeline and node.pipeline not in entry["pipelines"]:
                entry["pipelines"].append(node.pipeline)
        for key, value in status.items():  # "kind:id", or "pipeline/kind:id" for processors
            where, _, cid = key.partition(":")
            entry = by_id.get(f"{where.rpartition('/')[2]}:{cid}")
            if entry is not None and value["status"] != "ok":
                entry["status"], entry["error"] = value["status"], value.get("error")
        for key, entry in by_id.items():
            current = {**now.get(key, {})}
            before = {**then.get(key, {})}
            for k, v in now.get("*:" + entry["id"], {}).items():
                current[k] = current.get(k, 0.0) + v
            for k, v in then.get("*:" + entry["id"], {}).items():
                before[k] = before.get(k, 0.0) + v
            dropped = {k.partition(":")[2]: v for k, v in current.items() if k.startswith("dropped:") and v}
            entry.update({
                "in_total": current.get("in"), "out_total": current.get("out"),
                "refused_total": current.get("refused", 0.0), "errors_total": current.get("errors", 0.0),
                "dropped": dropped, "dropped_total": sum(dropped.values()),
                "in_per_s": _rate(current.get("in"), before.get("in"), seconds),
                "out_per_s": _rate(current.get("out"), before.get("out"), seconds),
                "dropped_per_s": _rate(sum(dropped.values()), sum(v for k, v in before.items()
                                                                  if k.startswith("dropped:")), seconds),
                "refused_per_s": _rate(current.get("refused", 0.0), before.get("refused", 0.0), seconds),
                "errors_per_s": _rate(current.get("errors", 0.0), before.get("errors", 0.0), seconds),
                "error_rate": _error_rate(current, before, failed=entry["kind"] != "receiver"),
                "queue_size": current.get("queue_size"), "queue_capacity": current.get("queue_capacity"),
                "latency_ms": (1000.0 * current["latency_sum"] / current["latency_count"]
                               if current.get("latency_count") else None),
            })
        return list(by_id.values())

    def pipelines(self) -> dict[str, list[tuple[str, str]]]:
        """Each pipeline's members in order, as ``(role, component id)``."""
        return {str(pid): [("receiver", str(r)) for r in p.receivers] + [("processor", str(x)) for x in p.processors]
                + [("exporter", str(e)) for e in p.exporters]
                for pid, p in sorted(self._graph().config.pipelines.items())}

    def graph(self) -> dict[str, Any]:
        """Nodes and edges as they run: receivers → each pipeline's processors in order → exporters/connectors."""
        config = self._graph().config
        nodes: dict[str, dict[str, Any]] = {}
        edges: set[tuple[str, str]] = set()

        def node(kind: str, cid: Any, pipeline: str | None = None) -> str:
            key = f"{kind}:{cid}" + (f"@{pipeline}" if pipeline else "")
            nodes.setdefault(key, {"key": key, "kind": kind, "id": str(cid), "pipeline": pipeline})
            return key

        connectors = {cid for kind, cid in config.components if kind is Kind.CONNECTOR}
        for pid, pipeline in sorted(config.pipelines.items()):
            sources = [node("connector" if r in connectors else "receiver", r) for r in pipeline.receivers]
            for processor in pipeline.processors:
                key = node("processor", processor, str(pid))
                edges.update((s, key) for s in sources)
                sources = [key]
            for exporter in pipeline.exporters:
                key = node("connector" if exporter in connectors else "exporter", exporter)
                edges.update((s, key) for s in sources)
        return {"nodes": list(nodes.values()), "edges": sorted(edges)}

    def snapshot(self, *, config: bool = False) -> dict[str, Any]:
        gateway = {"uptime_s": round(time.time() - self.started, 1), "ready": self.host.ready,
                   "healthy": self.host.healthy(), "config_generation": self._generation(),
                   "taps_attached": self._taps(),
                   "loop_lag_ms": round(self._lag_ms, 2),
                   "loop_lag_max_ms": round(max(self._lag_history, default=0.0), 2), **self._memory()}
        out: dict[str, Any] = {"gateway": gateway, "components": self.components(), "graph": self.graph(),
                               "kpis": self.kpis.snapshot(), "errors": list(self.errors.records)}
        if config:
            out["config"] = effective_config(self._raw_config())
        return out

    async def handle(self, request: web.Request) -> web.Response:
        from gateway._host.admin import json_response

        return json_response(self.snapshot(config=request.query.get("config") in ("1", "true")))


def _rate(now: float | None, before: float | None, seconds: float) -> float | None:
    if now is None:
        return None
    return round(max(now - (before or 0.0), 0.0) / seconds, 2)


def _error_rate(now: dict[str, float], before: dict[str, float], failed: bool = True) -> float | None:
    """Share of the items that reached a component over the last samples that it refused or failed on (0..1);
    None when nothing reached it. Receivers and exporters count refused and failed items in ``in`` too. A
    receiver's errors are bad requests, counted in requests rather than items (``failed=False`` leaves them out)."""
    arrived = now.get("in", 0.0) - before.get("in", 0.0)
    if arrived <= 0:
        return None
    bad = now.get("refused", 0.0) - before.get("refused", 0.0)
    if failed:
        bad += now.get("errors", 0.0) - before.get("errors", 0.0)
    return round(min(max(bad, 0.0) / arrived, 1.0), 4)
