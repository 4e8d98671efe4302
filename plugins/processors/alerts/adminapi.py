"""Admin routes (/api/alerts...) shared by every alerts processor of one gateway.

One processor instance exists per pipeline, but the routes are per gateway: the first instance to start
registers them, the last to stop removes them, and each request is answered from all live instances.
"""

from __future__ import annotations

import json
import re
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway import AdminRoutes, json_response, parse_duration

from .engine import Silence

if TYPE_CHECKING:
    from .processor import AlertsProcessor

__all__ = ["attach", "detach"]

_SILENCE_ID = re.compile(r"[0-9a-f]{8,32}")

ROUTES = (("GET", "/api/alerts"), ("POST", "/api/alerts/resolve"), ("GET", "/api/alerts/rules"),
          ("GET", "/api/alerts/silences"), ("POST", "/api/alerts/silences"),
          ("POST", "/api/alerts/silences/expire"))


class _Hub:
    def __init__(self, admin: AdminRoutes) -> None:
        self.admin = admin
        self.processors: list[AlertsProcessor] = []
        handlers = (self.list_alerts, self.resolve, self.rules, self.silences, self.add_silence,
                    self.expire_silence)
        for (method, path), handler in zip(ROUTES, handlers, strict=True):
            admin.add_route(method, path, handler)

    def close(self) -> None:
        for method, path in ROUTES:
            self.admin.remove_route(method, path)

    async def list_alerts(self, request: web.Request) -> web.Response:
        state, severity = request.query.get("state"), request.query.get("severity")
        out = []
        for processor in self.processors:
            now = processor.clock()
            for alert in processor.book.alerts.values():
                if (state and alert.state.value != state) or (severity and alert.severity != severity):
                    continue
                out.append({**alert.snapshot(), "processor": processor.name,
                            "silenced": processor.book.silenced(alert, now)})
        return json_response({"alerts": sorted(out, key=lambda a: (a["alertname"], a["id"]))})

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, ValueError):
            raise web.HTTPBadRequest(text='{"error": "body must be JSON"}', content_type="application/json") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
        return body

    async def resolve(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        fp = str(body.get("id", ""))
        for processor in self.processors:
            alert = processor.resolve(fp)
            if alert is not None:
                return json_response({"resolved": alert.snapshot()})
        return json_response({"error": f"no pending or firing alert with id {fp!r}"}, 404)

    async def rules(self, request: web.Request) -> web.Response:
        out = []
        for processor in self.processors:
            out += [{**row, "processor": processor.name} for row in processor.rule_rows()]
        return json_response({"rules": out})

    async def silences(self, request: web.Request) -> web.Response:
        """Active silences (one per id: every processor holds a copy of each)."""
        out: dict[str, dict[str, Any]] = {}
        for processor in self.processors:
            now = processor.clock()
            for silence in processor.book.silences.values():
                if silence.until > now:
                    out.setdefault(silence.id, silence.as_dict())
        return json_response({"silences": sorted(out.values(), key=lambda s: s["until"])})

    async def expire_silence(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        sid = str(body.get("id", ""))
        expired = None
        for processor in self.processors:
            silence = processor.book.silences.pop(sid, None)
            if silence is not None:
                expired = silence.as_dict()
        if expired is None:
            return json_response({"error": f"no silence with id {sid!r}"}, 404)
        return json_response({"expired": expired})

    async def add_silence(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        matchers = body.get("matchers")
        if not isinstance(matchers, dict) or not matchers:
            return json_response({"error": "matchers: a non-empty object of label: value is needed"}, 400)
        try:
            duration = parse_duration(body.get("duration", ""))
        except ValueError as exc:
            return json_response({"error": f"duration: {exc}"}, 400)
        if duration <= 0:
            return json_response({"error": "duration: must be > 0"}, 400)
        # A gateway run as several workers creates one silence on each with the same id (so one expire reaches
        # all); anyone else gets a new id.
        given = body.get("id")
        sid = given if isinstance(given, str) and _SILENCE_ID.fullmatch(given) else uuid.uuid4().hex[:12]
        silence = None
        for processor in self.processors:
            now = processor.clock()
            silence = Silence(sid, {str(k): v for k, v in matchers.items()}, now + duration, now,
                              str(body.get("comment", "")))
            processor.book.silences[sid] = silence
        if silence is None:
            return json_response({"error": "no alerts processor is running"}, 503)
        return json_response({"silence": silence.as_dict()})


_HUBS: weakref.WeakKeyDictionary[AdminRoutes, _Hub] = weakref.WeakKeyDictionary()


def attach(admin: AdminRoutes, processor: AlertsProcessor) -> None:
    hub = _HUBS.get(admin)
    if hub is None:
        hub = _HUBS[admin] = _Hub(admin)
    hub.processors.append(processor)


def detach(admin: AdminRoutes, processor: AlertsProcessor) -> None:
    hub = _HUBS.get(admin)
    if hub is None or processor not in hub.processors:
        return
    hub.processors.remove(processor)
    if not hub.processors:
        hub.close()
        del _HUBS[admin]
