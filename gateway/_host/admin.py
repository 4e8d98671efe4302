"""The admin HTTP endpoint: operations on a running gateway (alerts, reload, ...), always token protected.

Components and the service register routes at any time through ``host.admin.add_route``; the endpoint
dispatches through its own table, so routes added after start-up work and routes of a component that stopped
can be removed. Answers are JSON. A browser on the operator's machine can reach a loopback port, so every
request is checked, in this order (OWASP's CSRF and DNS-rebinding advice):

- ``Host`` must be a loopback name, an IP literal, the configured host or one of ``allowed_hosts``: a page that
  rebinds its own domain name to 127.0.0.1 sends its domain as ``Host`` and is refused (403).
- ``Origin``, when sent, must be the endpoint itself, and ``Sec-Fetch-Site`` must not say ``cross-site`` or
  ``same-site``: a form or ``fetch`` from another site is refused (403).
- Every request needs ``Authorization: Bearer <token>`` (401). Without ``token`` in the config, a random one is
  made at start and written to ``token_file`` (mode 0600, removed at stop), where ``otelgw alerts`` reads it.
- A request with a body that changes something (POST, PUT, PATCH, DELETE) must be ``application/json`` (415):
  no HTML form can send that type, and a script needs a CORS preflight, which this endpoint never grants.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway._host.redact import redact, register
from gateway.errors import ConfigError
from gateway.netaddr import host_name, is_ip, listen_error, split_host_port

__all__ = ["AdminConfig", "AdminServer", "Handler", "default_token_file", "json_response", "state_dir"]

log = logging.getLogger("otelgw.admin")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def state_dir() -> Path:
    """Where the gateway keeps files for local tools: $OTELGW_STATE_DIR, else $XDG_RUNTIME_DIR/otelgw, else
    ~/.otelgw. The container image sets OTELGW_STATE_DIR=/var/lib/otelgw."""
    if os.environ.get("OTELGW_STATE_DIR"):
        return Path(os.environ["OTELGW_STATE_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "otelgw"
    return Path.home() / ".otelgw"


def default_token_file(port: int) -> Path:
    """The generated token of the admin endpoint on ``port``: one file per port, so gateways side by side on one
    machine (a test run next to ``make run``) never overwrite each other's."""
    return state_dir() / f"admin-{port}.token"


@dataclass(frozen=True)
class AdminConfig:
    #: host:port of the admin endpoint; empty (the default) disables it. configs/default.yaml uses 127.0.0.1:13134.
    endpoint: str = ""
    #: Bearer token every request must carry (write it as ${env:OTELGW_ADMIN_TOKEN}). Empty: a random token is
    #: made at start and written to token_file.
    token: str = field(default="", repr=False)
    #: Where the generated token is written (mode 0600). Default: <state dir>/admin-<port>.token, the state dir
    #: being $OTELGW_STATE_DIR, else $XDG_RUNTIME_DIR/otelgw, else ~/.otelgw.
    token_file: str = ""
    #: Host names accepted in the Host header besides loopback names, IP literals and the endpoint's own host.
    allowed_hosts: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.endpoint:
            try:
                split_host_port(self.endpoint)
            except ValueError as exc:
                raise ConfigError(f"endpoint: {exc}") from None

    def __repr__(self) -> str:  # never print the token (otelgw validate, logs)
        return (f"AdminConfig(endpoint={self.endpoint!r}, token={'<set>' if self.token else '<generated>'}, "
                f"token_file={self.token_file!r}, allowed_hosts={self.allowed_hosts!r})")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (0600, in a 0700 directory we create), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, indent=2, default=str) + "\n", status=status,
                        content_type="application/json")


class AdminServer:
    def __init__(self, config: AdminConfig) -> None:
        self.config = config
        self._routes: dict[tuple[str, str], Handler] = {}
        #: Routes answered without the token: pages that carry no data and fetch it with the token themselves.
        self._public: set[tuple[str, str]] = set()
        self._runner: web.AppRunner | None = None
        #: ``host:port`` actually bound (the configured port may be 0).
        self.address: str | None = None
        #: The token requests must carry (configured or generated at start), and where a generated one was written.
        self.token = config.token
        self.token_file: Path | None = None
        host = split_host_port(config.endpoint)[0].lower() if config.endpoint else ""
        self._hosts = _LOOPBACK_NAMES | {h.lower() for h in config.allowed_hosts} | ({host} - {"0.0.0.0", "::"})

    def add_route(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """``public``: answered without the token (Host and Origin are still checked); only for GET routes of
        static content that holds no data, such as the status page's shell."""
        key = (method.upper(), path)
        if key in self._routes:
            raise ValueError(f"admin route {method} {path} is already registered")
        if public and key[0] != "GET":
            raise ValueError("only GET routes can be public")
        self._routes[key] = handler
        if public:
            self._public.add(key)

    def remove_route(self, method: str, path: str) -> None:
        self._routes.pop((method.upper(), path), None)
        self._public.discard((method.upper(), path))

    def routes(self) -> list[str]:
        return sorted(f"{method} {path}" for method, path in self._routes)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        try:
            given = credential.strip().encode("ascii")
        except UnicodeEncodeError:  # a token is ASCII; anything else is wrong, not an error
            return False
        return scheme.lower() == "bearer" and bool(self.token) and hmac.compare_digest(given, self.token.encode())

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Why a request is refused before its route is even looked up (Host, Origin, token), or None."""
        host = request.headers.get("Host")
        if host is not None:
            name = host_name(host)
            if name not in self._hosts and not is_ip(name):
                return json_response({"error": f"Host {host!r} is not accepted; list it in "
                                               f"service::admin::allowed_hosts"}, 403)
        origin = request.headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            if origin == "null" or host is None or parts.netloc.lower() != host.strip().lower():
                return json_response({"error": "cross-origin requests are refused"}, 403)
        if request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
            return json_response({"error": "cross-site requests are refused"}, 403)
        if (request.method, request.path) not in self._public and not self._authorized(request):
            return json_response({"error": "missing or invalid bearer token"}, 401)
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            if any(path == request.path for _, path in self._routes):
                return json_response({"error": f"method {request.method} not allowed"}, 405)
            return json_response({"error": f"no admin route {request.path}", "routes": self.routes()}, 404)
        if request.method in _MUTATING and request.content_type != "application/json":
            return json_response({"error": f"{request.method} needs Content-Type: application/json, "
                                           f"got {request.content_type!r}"}, 415)
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # an admin action failing must not take the endpoint down
            log.exception("admin request %s %s failed", request.method, request.path)
            return json_response({"error": redact(str(exc))}, 500)

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
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error("service::admin", self.config.endpoint, exc) from None
        self._runner = runner
        bound = runner.addresses[0]
        self.address = f"{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound[1]}"
        if not self.token:
            self.token = secrets.token_urlsafe(32)
            register([self.token])
            self.token_file = Path(self.config.token_file) if self.config.token_file else default_token_file(bound[1])
            try:
                write_private(self.token_file, self.token + "\n")
            except OSError as exc:
                await self.stop()
                raise OSError(f"service::admin cannot write its token to {self.token_file}: "
                              f"{exc.strerror or exc}; set service::admin::token_file or $OTELGW_STATE_DIR "
                              f"to a writable path") from None
        log.info("admin endpoint listening", extra={
            "address": ", ".join(f"{a[0]}:{a[1]}" for a in runner.addresses),
            "token_file": str(self.token_file) if self.token_file else "(token from the configuration)"})

    async def _index(self, request: web.Request) -> web.Response:
        return json_response({"routes": self.routes()})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.token_file is not None:
            with contextlib.suppress(OSError):
                if self.token_file.read_text().strip() == self.token:  # not a successor's on the same port
                    self.token_file.unlink()
            self.token_file = None
