"""Taps: samples of what leaves a receiver, processor or connector, streamed over the admin endpoint.

Every receiver, processor and connector hands its output to a ``FanOut`` (``Node.outlets`` in ``gateway._host.graph``).
Attaching a tap adds one read-only consumer to those fan-outs; detaching removes it. With no tap attached the
fan-outs hold exactly the consumers the graph built, so the data path is the same as if taps did not exist.

An attached tap never slows the pipeline and never holds data: on each batch it checks a token bucket (``rate``
items per second) and a small queue, keeps the batch's bytes (the receiver's wire bytes when still valid, else
one serialization) or counts the batch as skipped, and returns without awaiting anything. Decoding to OTLP/JSON
happens in the admin request that streams the samples, off the data path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import otlpjson
from gateway.component import Batch, ComponentID, Kind, Signal, count_items
from gateway.wirebytes import WireBatch, wire_bytes

if TYPE_CHECKING:
    from gateway._host.fanout import FanOut
    from gateway._host.graph import Graph, Node

__all__ = ["QUEUE_SIZE", "Tap", "TapHub", "TapPoint", "tap_points"]

#: Samples waiting for the reader; when it is full, further batches are skipped (counted), never waited for.
QUEUE_SIZE = 32
#: A tap that gives no rate samples at most this many items per second.
DEFAULT_RATE = 100.0
TAPPABLE = (Kind.RECEIVER, Kind.PROCESSOR, Kind.CONNECTOR)


@dataclass
class TapPoint:
    """One place a tap reads: the output fan-out of one node, with what redaction it has and has not passed."""

    node: Node
    signal: Signal
    outlet: FanOut
    redacted_by: list[str] = field(default_factory=list)
    not_yet_redacted_by: list[str] = field(default_factory=list)


class Tap:
    """A read-only consumer that samples batches into a bounded queue; see the module docstring."""

    def __init__(self, signals: set[Signal], rate: float = DEFAULT_RATE, queue_size: int = QUEUE_SIZE) -> None:
        self.rate = rate
        self.queue: asyncio.Queue[tuple[Signal, bytes, int]] = asyncio.Queue(queue_size)
        #: Items not sampled because of the rate or a full queue (the reader is slower than the data).
        self.skipped = 0
        self._tokens = rate
        self._refilled = time.monotonic()

    @property
    def mutates_data(self) -> bool:
        return False

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.sample(Signal.TRACES, batch)

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None:
        self.sample(Signal.METRICS, batch)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        self.sample(Signal.LOGS, batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        self.sample(batch.signal, batch)

    def sample(self, signal: Signal, batch: Batch | WireBatch) -> None:
        """Keep ``batch``'s bytes when the rate and the queue allow; never raises, never waits."""
        try:
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            items = count_items(signal, batch)
            if self._tokens <= 0 or self.queue.full():
                self.skipped += items
                return
            self._tokens -= items  # a big batch borrows ahead: the next ones wait until the bucket refills
            data = batch.data if isinstance(batch, WireBatch) else wire_bytes(batch) or batch.SerializeToString()
            self.queue.put_nowait((signal, data, items))
        except Exception:  # a tap must never cost the pipeline anything, errors included
            self.skipped += 1


def _redactions(processors: list[ComponentID]) -> list[str]:
    return [str(p) for p in processors if p.type == "redaction"]


def _relayed(graph: Graph, pid: Any, downstream: bool, seen: set[Any]) -> list[str]:
    """The redaction processors of the pipelines that connectors relay ``pid``'s data to (``downstream``) or from:
    a pipeline exporting to a connector that keeps the signal (``forward``, routing) hands the same items to the
    pipelines that connector feeds. Connectors that derive other data (span metrics, KPIs) are not followed."""
    config = graph.config
    connectors = {n.id for n in graph.nodes if n.kind is Kind.CONNECTOR and n.out_signal in (None, n.signal)}
    out: list[str] = []
    ends = config.pipelines[pid].exporters if downstream else config.pipelines[pid].receivers
    for connector in ends:
        if connector not in connectors:
            continue
        for other, pipeline in config.pipelines.items():
            if other in seen or other.signal is not pid.signal:
                continue
            if connector in (pipeline.receivers if downstream else pipeline.exporters):
                seen.add(other)
                out += _redactions(pipeline.processors) + _relayed(graph, other, downstream, seen)
    return out


def _downstream_redaction(graph: Graph, node: Node) -> tuple[list[str], list[str]]:
    """(redaction processors the node's output has passed, those it has still to pass): in its pipeline, and in the
    pipelines a connector that keeps the signal relays it from or to."""
    config = graph.config
    if node.kind is Kind.PROCESSOR:
        pid = next(p for p in config.pipelines if str(p) == node.pipeline)
        chain = config.pipelines[pid].processors
        index = chain.index(node.id)
        before = _redactions(chain[:index + 1]) + _relayed(graph, pid, False, {pid})
        after = _redactions(chain[index + 1:]) + _relayed(graph, pid, True, {pid})
    else:  # a receiver, or a connector's output side: the pipelines it feeds are ahead
        signal = node.out_signal or node.signal
        fed = [pid for pid, p in config.pipelines.items() if pid.signal is signal and node.id in p.receivers]
        after = [r for pid in fed for r in _redactions(config.pipelines[pid].processors)
                 + _relayed(graph, pid, True, set(fed))]
        before = []
        if node.kind is Kind.CONNECTOR and node.out_signal in (None, node.signal):  # what it relays, as it got it
            feeding = [pid for pid, p in config.pipelines.items() if pid.signal is signal and node.id in p.exporters]
            before = [r for pid in feeding for r in _redactions(config.pipelines[pid].processors)
                      + _relayed(graph, pid, False, set(feeding))]
    return sorted(set(before)), sorted(set(after))


def tap_points(graph: Graph, component: str, signal: Signal | None = None) -> list[TapPoint]:
    """Where a tap on ``component`` (``id`` or ``kind:id``) reads; raises ``KeyError`` naming the choices."""
    kind_text, sep, id_text = component.rpartition(":") if ":" in component else ("", "", component)
    cid = ComponentID.parse(id_text)
    points: list[TapPoint] = []
    for node in graph.nodes:
        if node.kind not in TAPPABLE or node.id != cid or (sep and node.kind.value != kind_text):
            continue
        out_signal = node.out_signal or node.signal
        if signal is not None and out_signal is not signal:
            continue
        before, after = _downstream_redaction(graph, node)
        points.extend(TapPoint(node, out_signal, outlet, before, after) for outlet in node.outlets)
    if not points:
        choices = sorted({f"{n.kind.value}:{n.id}" for n in graph.nodes if n.kind in TAPPABLE})
        what = f"{component} ({signal.value})" if signal else component
        raise KeyError(f"no receiver, processor or connector {what} in the running configuration; "
                       f"choose one of {', '.join(choices)}")
    return points


def attach(tap: Tap, points: list[TapPoint]) -> None:
    for point in points:
        point.outlet.readonly.insert(0, tap)  # first, so it reads the batch before anything downstream


def detach(tap: Tap, points: list[TapPoint]) -> None:
    for point in points:
        with contextlib.suppress(ValueError):
            point.outlet.readonly.remove(tap)


def _prune(repeated: Any, keep: Callable[[Any], bool]) -> None:
    for i in reversed(range(len(repeated))):
        if not keep(repeated[i]):
            del repeated[i]


def _points(metric: Any) -> Any:
    data = metric.WhichOneof("data")
    return getattr(metric, data).data_points if data else ()


def _trim(signal: Signal, batch: Batch, keep: int) -> None:
    """Cut ``batch`` down to its first ``keep`` items, dropping the metrics, scopes and resources left empty."""
    left = keep
    kind, items = {Signal.TRACES: ("spans", "spans"), Signal.LOGS: ("logs", "log_records"),
                   Signal.METRICS: ("metrics", "metrics")}[signal]
    resources = getattr(batch, f"resource_{kind}")
    for resource in resources:
        scopes = getattr(resource, f"scope_{kind}")
        for scope in scopes:
            if signal is Signal.METRICS:
                for metric in scope.metrics:
                    points = _points(metric)
                    del points[max(left, 0):]
                    left -= len(points)
                _prune(scope.metrics, lambda m: len(_points(m)) > 0)
            else:
                del getattr(scope, items)[max(left, 0):]
                left -= len(getattr(scope, items))
        _prune(scopes, lambda sc: len(getattr(sc, items)) > 0)
    _prune(resources, lambda r: len(getattr(r, f"scope_{kind}")) > 0)


class TapHub:
    """The ``GET /api/tap`` admin route: attaches a tap for the request and streams its samples as NDJSON.

    Query: ``component`` (``id`` or ``kind:id``), optional ``signal``, ``limit`` (items; 0 = until the client
    goes), ``rate`` (items per second). Lines: one ``{"tap": header}``, then ``{"signal", "items", "data"}`` per
    sample (``data`` is OTLP/JSON), ``{"skipped": n}`` when items were skipped, and a last ``{"end": reason}``.
    """

    def __init__(self, graph: Callable[[], Graph]) -> None:
        self._graph = graph
        self._active: set[asyncio.Event] = set()

    def end_all(self) -> None:
        """End every tap (the graph is about to be replaced by a reload, or the gateway stops)."""
        for stop in self._active:
            stop.set()

    @property
    def attached(self) -> int:
        return len(self._active)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        from gateway._host.admin import json_response

        query = request.query
        try:
            signal = Signal(query["signal"]) if query.get("signal") else None
            limit = int(query.get("limit", "0"))
            rate = float(query.get("rate", str(DEFAULT_RATE)))
            if limit < 0 or not 0 < rate <= 1e6:
                raise ValueError("limit must be >= 0 and rate between 0 and 1000000")
        except (ValueError, KeyError) as exc:
            return json_response({"error": f"bad tap parameters: {exc}"}, 400)
        graph = self._graph()
        try:
            points = tap_points(graph, query.get("component", ""), signal)
        except (KeyError, ValueError) as exc:
            return json_response({"error": str(exc).strip('"')}, 404)
        tap = Tap({p.signal for p in points}, rate)
        node = points[0].node
        header = {"component": str(node.id), "kind": node.kind.value,
                  "signals": sorted({p.signal.value for p in points}),
                  "pipelines": sorted({p.node.pipeline for p in points if p.node.pipeline}),
                  "redacted_by": sorted({r for p in points for r in p.redacted_by}),
                  "not_yet_redacted_by": sorted({r for p in points for r in p.not_yet_redacted_by}),
                  "limit": limit, "rate": rate}
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        stop = asyncio.Event()
        self._active.add(stop)
        attach(tap, points)
        reason = "client left"
        try:
            await response.write(json.dumps({"tap": header}).encode() + b"\n")
            reason = await self._stream(request, response, tap, limit, stop)
            await response.write(json.dumps({"end": reason, "skipped": tap.skipped}).encode() + b"\n")
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            detach(tap, points)
            self._active.discard(stop)
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, tap: Tap, limit: int,
                      stop: asyncio.Event) -> str:
        shown = 0
        reported_skipped = 0
        while True:
            if stop.is_set():
                return "the configuration was reloaded or the gateway is stopping"
            if request.transport is None or request.transport.is_closing():
                return "client left"
            try:
                async with asyncio.timeout(0.5):  # not wait_for: a swallowed cancellation would keep streaming
                    signal, data, items = await tap.queue.get()
            except TimeoutError:
                if tap.skipped != reported_skipped:
                    reported_skipped = tap.skipped
                    await response.write(json.dumps({"skipped": tap.skipped}).encode() + b"\n")
                continue
            batch = signal.request_type.FromString(data)
            # One sample shows at most a second's worth of items (and never past the limit): a big batch is cut
            # before it is turned into JSON, the costly part, which runs on the gateway's CPU.
            keep = max(int(tap.rate), 1)
            if limit:
                keep = min(keep, limit - shown)
            if items > keep:
                tap.skipped += items - keep
                items = keep
                _trim(signal, batch, items)
            line = {"signal": signal.value, "items": items, "data": otlpjson.to_dict(batch)}
            await response.write(json.dumps(line).encode() + b"\n")
            shown += items
            if limit and shown >= limit:
                return "limit reached"
