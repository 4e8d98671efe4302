"""The admin endpoint's data routes for a gateway run as several workers: one answer made of every worker's.

``otelgw top``, the status page, ``otelgw tap`` and ``otelgw alerts`` talk to the configured admin address, which
the supervisor serves (``view.py``). Each route here asks every worker's own admin endpoint (a loopback port,
the supervisor's token) and combines the answers:

- ``GET /api/stats``: counters, rates and queue sizes are summed per component; the error rate is weighted by
  the items that arrived; latency is the mean of the workers that sent; health is the worst worker's. Memory is
  the sum of the workers' (each has its own memory_limiter). KPIs and recent errors carry a ``worker`` field:
  the KPIs are worker 0's, which keeps them for the whole gateway (``workers.owner``).
- ``GET /api/tap``: a tap on every worker at ``rate / N`` each, their lines interleaved as they come, each with
  its ``worker``; ``limit`` is applied to the total; the stream ends when every worker's has.
- ``/api/alerts...``: alerts of every worker (each evaluates the series it owns); a silence is created with one
  id on every worker, so that expiring it expires it everywhere; resolve and expire act wherever the alert or
  silence is.

A worker that does not answer is left out and named under ``workers_missing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway._host.admin import AdminServer, json_response
from gateway._host.statuspage import add_status_page
from gateway._host.tap import DEFAULT_RATE

if TYPE_CHECKING:
    from .view import View

__all__ = ["AdminView", "merge_stats"]

log = logging.getLogger("otelgw.workers")

#: Per-component fields that add up over workers.
_SUMMED = ("in_total", "out_total", "refused_total", "errors_total", "dropped_total", "in_per_s", "out_per_s",
           "dropped_per_s", "refused_per_s", "errors_per_s", "queue_size", "queue_capacity")
#: Worst first: the component's status across workers is the worst any worker reports.
_SEVERITY = ("permanent_error", "recoverable_error", "stopped", "stopping", "starting", "ok")
#: ``gateway`` fields that add up (each worker is a process of its own); the others take the worst value.
_GATEWAY_SUMMED = ("rss_bytes", "limit_bytes", "soft_limit_bytes", "taps_attached")
#: Recent errors kept in the merged snapshot (each worker keeps its own most recent ones).
_ERRORS_KEPT = 50


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return round(a + b, 4) if isinstance(a, float) or isinstance(b, float) else a + b


def _merge_component(into: dict[str, Any], other: dict[str, Any]) -> None:
    weights = (into.get("in_per_s") or 0.0, other.get("in_per_s") or 0.0)
    rates = (into.get("error_rate"), other.get("error_rate"))
    for key in _SUMMED:
        into[key] = _add(into.get(key), other.get(key))
    dropped = dict(into.get("dropped") or {})
    for reason, count in (other.get("dropped") or {}).items():
        dropped[reason] = _add(dropped.get(reason), count)
    into["dropped"] = dropped
    known = [(rate, weight) for rate, weight in zip(rates, weights, strict=True) if rate is not None]
    if known:
        total = sum(weight for _, weight in known)
        into["error_rate"] = (round(sum(rate * weight for rate, weight in known) / total, 4) if total
                              else max(rate for rate, _ in known))
    latencies = [v for v in (into.get("latency_ms"), other.get("latency_ms")) if v is not None]
    into["latency_ms"] = sum(latencies) / len(latencies) if latencies else None
    statuses = [s for s in (into.get("status"), other.get("status")) if s]
    if statuses:
        into["status"] = min(statuses, key=lambda s: _SEVERITY.index(s) if s in _SEVERITY else len(_SEVERITY))


def merge_stats(snapshots: dict[int, dict[str, Any]], count: int) -> dict[str, Any]:
    """The ``/api/stats`` snapshots of workers (by index) as one snapshot of the whole gateway."""
    if not snapshots:
        return {"gateway": {"ready": False, "healthy": False, "workers": count, "workers_missing": list(range(count))},
                "components": [], "graph": {"nodes": [], "edges": []}, "kpis": [], "errors": []}
    first = snapshots[min(snapshots)]
    gateway: dict[str, Any] = dict(first["gateway"])
    components: dict[tuple[str, str], dict[str, Any]] = {}
    kpis: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for index, snapshot in sorted(snapshots.items()):
        mine = snapshot["gateway"]
        if index != min(snapshots):
            for key, value in mine.items():
                if key in _GATEWAY_SUMMED:
                    gateway[key] = _add(gateway.get(key), value)
                elif key in ("ready", "healthy"):
                    gateway[key] = bool(gateway.get(key)) and bool(value)
                elif key == "config_generation":
                    gateway[key] = min(gateway.get(key, value), value)  # the configuration every worker has
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    gateway[key] = max(gateway.get(key) or 0, value)
        for component in snapshot["components"]:
            key = (component["kind"], component["id"])
            if key in components:
                _merge_component(components[key], component)
            else:
                components[key] = dict(component)
        kpis += [{**kpi, "worker": index} for kpi in snapshot.get("kpis", [])]
        errors += [{**error, "worker": index} for error in snapshot.get("errors", [])]
    gateway["workers"] = count
    gateway["workers_missing"] = [i for i in range(count) if i not in snapshots]
    if gateway["workers_missing"]:
        gateway["ready"] = gateway["healthy"] = False
    out: dict[str, Any] = {**first, "gateway": gateway, "components": list(components.values()), "kpis": kpis,
                           "errors": sorted(errors, key=lambda e: str(e.get("ts", "")))[-_ERRORS_KEPT:]}
    return out


class AdminView:
    """Routes on the supervisor's admin endpoint that combine every worker's answer."""

    def __init__(self, view: View) -> None:
        self.view = view

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.view.supervisor.token}"}

    def register(self, admin: AdminServer) -> None:
        admin.add_route("GET", "/api/stats", self.stats)
        admin.add_route("GET", "/api/tap", self.tap)
        admin.add_route("GET", "/api/alerts", self.alerts)
        admin.add_route("GET", "/api/alerts/rules", self.rules)
        admin.add_route("GET", "/api/alerts/silences", self.silences)
        admin.add_route("POST", "/api/alerts/silences", self.add_silence)
        admin.add_route("POST", "/api/alerts/silences/expire", self._wherever("expired"))
        admin.add_route("POST", "/api/alerts/resolve", self._wherever("resolved"))
        add_status_page(admin)

    async def _ask(self, request: web.Request, body: Any = None) -> dict[int, tuple[int, Any]]:
        """Every worker's answer to the same request, as (status, JSON body); status 0 for no answer."""
        answers = await self.view.ask_all(lambda r: r.get("admin"), request.path_qs, request.method,
                                          self._headers, body)
        return {i: (status, _json(text)) for i, (status, text) in answers.items()}

    async def stats(self, request: web.Request) -> web.Response:
        answers = await self._ask(request)
        snapshots = {i: body for i, (status, body) in answers.items() if status == 200 and isinstance(body, dict)}
        return json_response(merge_stats(snapshots, self.view.supervisor.count))

    async def alerts(self, request: web.Request) -> web.Response:
        answers = await self._ask(request)
        if not any(status == 200 for status, _ in answers.values()):
            return _first_refusal(answers)
        found = [{**alert, "worker": i} for i, (status, body) in sorted(answers.items()) if status == 200
                 for alert in body.get("alerts", [])]
        return json_response({"alerts": sorted(found, key=lambda a: (a["alertname"], a["id"], a["worker"]))})

    async def rules(self, request: web.Request) -> web.Response:
        # Every worker runs the same rules: the first answer is every worker's.
        answers = await self._ask(request)
        for _, (status, body) in sorted(answers.items()):
            if status == 200:
                return json_response(body)
        return _first_refusal(answers)

    async def silences(self, request: web.Request) -> web.Response:
        answers = await self._ask(request)
        if not any(status == 200 for status, _ in answers.values()):
            return _first_refusal(answers)
        by_id: dict[str, dict[str, Any]] = {}
        for _, (status, body) in sorted(answers.items()):
            if status == 200:
                for silence in body.get("silences", []):
                    by_id.setdefault(silence["id"], silence)
        return json_response({"silences": sorted(by_id.values(), key=lambda s: s["until"])})

    async def add_silence(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if isinstance(body, web.Response):
            return body
        # One id chosen here for every worker's copy, so that expiring it by that id reaches them all.
        answers = await self._ask(request, {**body, "id": secrets.token_hex(6)})
        for _, (status, answer) in sorted(answers.items()):
            if status == 200:
                return json_response(answer)
        return _first_refusal(answers)

    def _wherever(self, done: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A POST that acts on whichever workers hold the alert or silence: 200 when one of them did."""
        async def handle(request: web.Request) -> web.Response:
            body = await _body(request)
            if isinstance(body, web.Response):
                return body
            answers = await self._ask(request, body)
            for _, (status, answer) in sorted(answers.items()):
                if status == 200 and done in answer:
                    return json_response(answer)
            return _first_refusal(answers)
        return handle

    async def tap(self, request: web.Request) -> web.StreamResponse:
        reports = self.view.reports()
        count = self.view.supervisor.count
        query = dict(request.query)
        try:
            rate = float(query.get("rate", str(DEFAULT_RATE)))
            limit = int(query.get("limit", "0"))
        except ValueError:
            return json_response({"error": "bad tap parameters: rate and limit must be numbers"}, 400)
        query["rate"] = repr(rate / count)  # each worker samples its share of the rate asked for
        lines: asyncio.Queue[tuple[int, bytes | None, int]] = asyncio.Queue()
        streams = [asyncio.get_running_loop().create_task(self._tap_one(i, str(reports[i]["admin"]), query, lines))
                   for i in range(count) if i in reports and reports[i].get("admin")]
        response: web.StreamResponse | None = None
        try:
            open_streams, shown, skipped, reason = len(streams), 0, {}, "every worker's tap ended"
            header_sent = False
            while open_streams:
                index, line, status = await lines.get()
                if line is None:
                    open_streams -= 1
                    continue
                if status != 200:  # a refusal (bad parameters, no such component) is the same on every worker
                    if response is None:
                        return web.Response(body=line, status=status, content_type="application/json")
                    continue
                message = json.loads(line)
                if response is None:
                    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
                    await response.prepare(request)
                if "tap" in message:
                    if header_sent:
                        continue
                    header_sent = True
                    message["tap"].update(workers=count, rate=rate)
                elif "end" in message:
                    skipped[index] = message.get("skipped", 0)
                    continue
                elif "skipped" in message:
                    skipped[index] = message["skipped"]
                    message["skipped"] = sum(skipped.values())
                else:
                    message["worker"] = index
                    shown += message.get("items", 0)
                await response.write(json.dumps(message).encode() + b"\n")
                if limit and shown >= limit:
                    reason = "limit reached"
                    break
            if response is None:
                return json_response({"error": "no worker answered the tap", "workers": count}, 503)
            with contextlib.suppress(ConnectionError):
                await response.write(json.dumps({"end": reason, "skipped": sum(skipped.values())}).encode()
                                     + b"\n")
            return response
        except ConnectionError:
            assert response is not None
            return response
        finally:
            for stream in streams:
                stream.cancel()
            await asyncio.gather(*streams, return_exceptions=True)

    async def _tap_one(self, index: int, address: str, query: dict[str, str],
                       lines: asyncio.Queue[tuple[int, bytes | None, int]]) -> None:
        session = self.view.session
        try:
            async with session.get(f"http://{address}/api/tap", params=query, headers=self._headers,
                                   timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)) as answer:
                if answer.status != 200:
                    await lines.put((index, await answer.read(), answer.status))
                    return
                async for line in answer.content:
                    if line.strip():
                        await lines.put((index, line, 200))
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("a worker's tap ended early", extra={"worker": index, "error": type(exc).__name__})
        finally:
            await lines.put((index, None, 0))


async def _body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except ValueError:
        return json_response({"error": "body must be JSON"}, 400)
    if not isinstance(body, dict):
        return json_response({"error": "body must be a JSON object"}, 400)
    return body


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"error": text[:500]}


def _first_refusal(answers: dict[int, tuple[int, Any]]) -> web.Response:
    """The first worker's refusal as the answer; 503 when no worker answered at all."""
    for _, (status, body) in sorted(answers.items()):
        if status:
            return json_response(body, status)
    return json_response({"error": "no worker answered"}, 503)
