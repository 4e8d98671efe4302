"""A small HTTP server for the debugging extensions (``zpages``, ``pprof``): localhost by default, and a Host
check so a web page that rebinds its domain name to 127.0.0.1 cannot read it (a browser sends that domain as
``Host``; only loopback names, IP literals and the configured host are answered)."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.netaddr import format_addresses, listen_error, split_host_port

__all__ = ["DebugServer"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LOOPBACK = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _host_name(header: str) -> str:
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class DebugServer:
    def __init__(self, component: str, endpoint: str, routes: dict[str, Handler]) -> None:
        self.component = component
        self.endpoint = endpoint
        self.routes = routes
        self._hosts = _LOOPBACK | {split_host_port(endpoint)[0].lower()}
        self._runner: web.AppRunner | None = None
        #: ``host:port`` actually bound (the configured port may be 0).
        self.address: str | None = None

    @web.middleware
    async def _check_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None:
            name = _host_name(host)
            if name not in self._hosts and not _is_ip(name):
                return web.Response(status=403, text=f"Host {host!r} is not accepted\n")
        return await handler(request)

    async def start(self) -> str:
        app = web.Application(middlewares=[self._check_host])
        for path, handler in self.routes.items():
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = split_host_port(self.endpoint)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error(self.component, self.endpoint, exc) from None
        self._runner = runner
        bound = runner.addresses[0]
        self.address = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
        return format_addresses(runner.addresses)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
