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

from gateway import ComponentSettings, Host, HTTPServer

from .config import Config

__all__ = ["HealthCheck"]

LIVENESS_PATHS = ("/health", "/health/live")
READINESS_PATH = "/health/ready"


class HealthCheck:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        #: ``host:port`` actually bound, set by ``start`` (tests listen on port 0).
        self.address: str | None = None
        self._host: Host | None = None
        self.server: HTTPServer | None = None
        self._up_since = time.time()

    async def start(self, host: Host) -> None:
        self._host = host
        self._up_since = time.time()
        if self.config.check_collector_pipeline and self.config.check_collector_pipeline.get("enabled"):
            self.logger.warning("check_collector_pipeline is not supported and is ignored")
        # The configured path is what a Collector user's probes hit, so it keeps readiness semantics even when
        # it shadows one of the fixed paths.
        routes = {path: self._live for path in LIVENESS_PATHS}
        routes[READINESS_PATH] = self._ready
        routes[self.config.path] = self._ready
        # The shared HTTP server block: tls, auth, cors, response_headers (gateway.confighttp.HTTPServer).
        self.server = HTTPServer(f"health_check extension {self.settings.id}", self.config, routes, host=host,
                                 logger=self.logger)
        addresses = await self.server.start()
        self.address = self.server.address
        self.logger.info("health check listening on %s", addresses)

    async def shutdown(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()

    def _times(self) -> dict[str, Any]:
        return {
            "upSince": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._up_since)),
            "uptime": f"{time.time() - self._up_since:.3f}s",
        }

    async def _live(self, request: web.BaseRequest) -> web.Response:
        return web.json_response({"status": "Server available", **self._times()})

    async def _ready(self, request: web.BaseRequest) -> web.Response:
        host = self._host
        ready = host is not None and host.ready and host.healthy()
        body = {
            "status": "Server available" if ready else "Server not available",
            **self._times(),
            "components": host.component_status() if host is not None else {},
        }
        return web.json_response(body, status=200 if ready else 503)
