"""The health_check extension: liveness and readiness over HTTP, for load balancers and Kubernetes probes.

Liveness (``/health``, ``/health/live``) answers 200 for as long as the process serves HTTP at all. Readiness
(``/health/ready`` and the configured ``path``, ``/`` by default as in the Collector) answers 200 only from
the moment every pipeline has started until shutdown begins, and while no component reports a permanent error;
otherwise 503. Both readiness answers carry every component's status, so a failed probe says why.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from gateway import ComponentSettings, Host, format_addresses, listen_error, split_host_port

from .config import Config

__all__ = ["HealthCheck"]

LIVENESS_PATHS = ("/health", "/health/live")
READINESS_PATH = "/health/ready"


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HealthCheck:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        #: ``host:port`` actually bound, set by ``start`` (tests listen on port 0).
        self.address: str | None = None
        self._host: Host | None = None
        self._runner: web.AppRunner | None = None
        self._up_since = time.time()

    async def start(self, host: Host) -> None:
        self._host = host
        self._up_since = time.time()
        if self.config.check_collector_pipeline and self.config.check_collector_pipeline.get("enabled"):
            self.logger.warning("check_collector_pipeline is not supported and is ignored")
        app = web.Application()
        # The configured path is what a Collector user's probes hit, so it keeps readiness semantics even when
        # it shadows one of the fixed paths.
        app.router.add_get(self.config.path, self._ready)
        for path in LIVENESS_PATHS:
            if path != self.config.path:
                app.router.add_get(path, self._live)
        if self.config.path != READINESS_PATH:
            app.router.add_get(READINESS_PATH, self._ready)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        bind_host, port = split_host_port(self.config.endpoint)
        site = web.TCPSite(runner, bind_host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error(f"health_check extension {self.settings.id}", self.config.endpoint, exc) from None
        self._runner = runner
        bound = runner.addresses[0]
        self.address = _format_address(bound[0], bound[1])
        self.logger.info("health check listening on %s", format_addresses(runner.addresses))

    async def shutdown(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _times(self) -> dict[str, Any]:
        return {
            "upSince": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._up_since)),
            "uptime": f"{time.time() - self._up_since:.3f}s",
        }

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "Server available", **self._times()})

    async def _ready(self, request: web.Request) -> web.Response:
        host = self._host
        ready = host is not None and host.ready and host.healthy()
        body = {
            "status": "Server available" if ready else "Server not available",
            **self._times(),
            "components": host.component_status() if host is not None else {},
        }
        return web.json_response(body, status=200 if ready else 503)
