"""The zpages extension: the status page's views at the Collector's paths, as plain server-rendered HTML.

- ``/debug/servicez``: version, start time, uptime, health, config generation, memory, event-loop lag;
- ``/debug/pipelinez``: every pipeline with its receivers, processors and exporters and their counters
  (items in and out, refused, dropped by reason, status);
- ``/debug/extensionz``: every extension and its status;
- ``/debug/featurez``: feature gates (otelgw has none; the page says so).

It reads ``host.stats`` (the host's component counters and graph), the snapshot ``otelgw top`` and the admin
status page show. It has no token, as in the Collector, so it binds localhost by default; the effective
configuration is not shown here (it is on the admin endpoint's status page, behind the token).
"""

from __future__ import annotations

import html
import time
from importlib import metadata
from typing import Any

from aiohttp import web

from gateway import ComponentSettings, DebugServer, Host

from .config import Config

__all__ = ["PATHS", "ZPages"]

PATHS = ("/debug/servicez", "/debug/pipelinez", "/debug/extensionz", "/debug/featurez")
_STYLE = ("body{font:14px system-ui,sans-serif;margin:16px}table{border-collapse:collapse}"
          "td,th{padding:3px 10px;border-bottom:1px solid #ccc;text-align:left}.bad{color:#b00}")


def _version() -> str:
    try:
        return metadata.version("otelgw")
    except metadata.PackageNotFoundError:
        return "unknown"


def _page(title: str, body: str) -> web.Response:
    links = " | ".join(f'<a href="{p}">{p.rsplit("/", 1)[1]}</a>' for p in PATHS)
    text = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><nav>{links}</nav><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('-' if c is None else str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class ZPages:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self._host: Host | None = None
        self.server: DebugServer | None = None

    async def start(self, host: Host) -> None:
        self._host = host
        # The shared HTTP server block (tls, auth, cors, response_headers), with the debug servers' Host check.
        self.server = DebugServer(f"zpages extension {self.settings.id}", self.config, dict(zip(
            PATHS, (self._servicez, self._pipelinez, self._extensionz, self._featurez), strict=True)),
            host=host, logger=self.logger)
        addresses = await self.server.start()
        self.logger.info("zpages listening on %s", addresses)

    async def shutdown(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def _snapshot(self) -> dict[str, Any]:
        stats = self._host.stats if self._host is not None else None
        if stats is None:
            raise web.HTTPServiceUnavailable(text="the gateway has not started yet\n")
        snapshot: dict[str, Any] = stats.snapshot()
        return snapshot

    async def _servicez(self, request: web.BaseRequest) -> web.Response:
        g = self._snapshot()["gateway"]
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - g["uptime_s"]))
        rows = [["version", _version()], ["start time", started], ["uptime", f"{g['uptime_s']:.0f} s"],
                ["healthy", g["healthy"]], ["config generation", g["config_generation"]],
                ["resident memory", f"{g['rss_bytes'] / 1048576:.1f} MiB"],
                ["memory_limiter soft / hard", f"{_num(g.get('soft_limit_bytes'))} / {_num(g.get('limit_bytes'))}"],
                ["event loop lag", f"{g['loop_lag_ms']} ms (max {g['loop_lag_max_ms']} ms)"]]
        return _page("servicez", _table(["property", "value"], rows))

    async def _pipelinez(self, request: web.BaseRequest) -> web.Response:
        snapshot = self._snapshot()
        by_key = {f"{c['kind']}:{c['id']}": c for c in snapshot["components"]}
        graph = snapshot["graph"]
        body = []
        assert self._host is not None and self._host.stats is not None
        for pid, members in self._host.stats.pipelines().items():
            rows = []
            for kind, cid in members:
                entry = by_key.get(f"{kind}:{cid}") or by_key.get(f"connector:{cid}") or {}
                dropped = " ".join(f"{r}={_num(n)}" for r, n in sorted(entry.get("dropped", {}).items())) or "0"
                rows.append([kind if entry.get("kind") != "connector" else "connector", cid,
                             _num(entry.get("in_total")), _num(entry.get("out_total")),
                             _num(entry.get("refused_total")), dropped, entry.get("status", "-")])
            body.append(f"<h2>{html.escape(pid)}</h2>" + _table(
                ["kind", "component", "in", "out", "refused", "dropped", "status"], rows))
        if not graph["nodes"]:
            body.append("<p>no pipelines</p>")
        return _page("pipelinez", "".join(body))

    async def _extensionz(self, request: web.BaseRequest) -> web.Response:
        assert self._host is not None
        rows = [[key.partition(":")[2], value["status"], value.get("error", ""), value["since"]]
                for key, value in self._host.component_status().items() if key.startswith("extension:")]
        return _page("extensionz", _table(["extension", "status", "error", "since"], rows))

    async def _featurez(self, request: web.BaseRequest) -> web.Response:
        return _page("featurez", "<p>otelgw has no feature gates: behaviour is chosen in the configuration.</p>"
                     + _table(["gate", "enabled", "stage", "description"], []))
