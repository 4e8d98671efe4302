"""The admin HTTP endpoint: operations on a running gateway (alerts, reload, ...), bearer-token protected.

Components and the service register routes at any time through ``host.admin.add_route``; the endpoint
dispatches through its own table, so routes added after start-up work and routes of a component that stopped
can be removed. When ``service::admin::token`` is set, every request must carry ``Authorization: Bearer
<token>``; the token is never logged. Answers are JSON.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.errors import ConfigError
from gateway.netaddr import split_host_port

__all__ = ["AdminConfig", "AdminServer", "Handler", "json_response"]

log = logging.getLogger("otelgw.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class AdminConfig:
    #: host:port of the admin endpoint; empty (the default) disables it. Keep it on loopback or set a token:
    #: it changes a running gateway. configs/default.yaml uses 127.0.0.1:13134.
    endpoint: str = ""
    #: Bearer token required on every request when set (write it as ${env:OTELGW_ADMIN_TOKEN}).
    token: str = field(default="", repr=False)

    def validate(self) -> None:
        if self.endpoint:
            try:
                split_host_port(self.endpoint)
            except ValueError as exc:
                raise ConfigError(f"endpoint: {exc}") from None

    def __repr__(self) -> str:  # never print the token (otelgw validate, logs)
        return f"AdminConfig(endpoint={self.endpoint!r}, token={'<set>' if self.token else '<none>'})"


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, indent=2, default=str) + "\n", status=status,
                        content_type="application/json")


class AdminServer:
    def __init__(self, config: AdminConfig) -> None:
        self.config = config
        self._routes: dict[tuple[str, str], Handler] = {}
        self._runner: web.AppRunner | None = None
        #: ``host:port`` actually bound (the configured port may be 0).
        self.address: str | None = None

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"admin route {method} {path} is already registered")
        self._routes[key] = handler

    def remove_route(self, method: str, path: str) -> None:
        self._routes.pop((method.upper(), path), None)

    def routes(self) -> list[str]:
        return sorted(f"{method} {path}" for method, path in self._routes)

    def _authorized(self, request: web.Request) -> bool:
        if not self.config.token:
            return True
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credential.strip(), self.config.token)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return json_response({"error": "missing or invalid bearer token"}, 401)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            if any(path == request.path for _, path in self._routes):
                return json_response({"error": f"method {request.method} not allowed"}, 405)
            return json_response({"error": f"no admin route {request.path}", "routes": self.routes()}, 404)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # an admin action failing must not take the endpoint down
            log.exception("admin request %s %s failed", request.method, request.path)
            return json_response({"error": str(exc)}, 500)

    async def start(self) -> None:
        if not self.config.endpoint:
            return
        self.add_route("GET", "/", self._index)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        host, port = split_host_port(self.config.endpoint)
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
        self.address = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound[1]}"

    async def _index(self, request: web.Request) -> web.Response:
        return json_response({"routes": self.routes()})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
