"""HTTP server and client settings shared by every receiver and exporter, as the Collector's confighttp.

In the Collector these blocks are squashed into a component's config (``endpoint``, ``headers``... sit at the
component's top level), so here they are dataclass bases a component's ``Config`` extends; nested blocks
(``tls``, ``cors``, ``auth``) are named fields. One implementation each:

- :class:`HTTPServerConfig` with :func:`server_middleware` (CORS, ``response_headers``) for aiohttp servers,
  and :class:`HTTPServer`, the whole server for components that answer GET requests (health_check, zpages,
  pprof, the prometheus exporter's /metrics);
- :class:`HTTPClientConfig` with :class:`HTTPClient`, the session an exporter posts through (headers,
  credentials from an authenticator extension, compression, proxy, timeout, buffer sizes, TLS).
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import gzip
import logging
import re
import socket
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import cramjam
from aiohttp import web
from yarl import URL

from gateway.configauth import AuthConfig, ClientHeaders, client_auth, server_auth
from gateway.configblocks import ReloadingClientTLS, ReloadingServerTLS, TLSClientConfig, TLSServerConfig
from gateway.configtypes import Duration
from gateway.errors import ConfigError, RetryableError
from gateway.netaddr import format_addresses, host_name, is_ip, listen_error, split_host_port

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["COMPRESSIONS", "CORSConfig", "HTTPClient", "HTTPClientConfig", "HTTPServer", "HTTPServerConfig",
           "compress", "server_middleware"]

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
#: Go's gzip/zlib default level, which the Collector uses; Python's default (9) costs much more CPU.
_ZLIB_LEVEL = 6
# Above this size compression runs in a thread (zlib and cramjam release the GIL), so the event loop that the
# receivers share is not blocked for the milliseconds a large body takes.
_OFFLOAD_BYTES = 64 * 1024


def _zstd(body: bytes) -> bytes:
    return bytes(cramjam.zstd.compress(body))


def _snappy(body: bytes) -> bytes:
    # The block format, as the Collector's confighttp and Prometheus remote write send under "snappy".
    return bytes(cramjam.snappy.compress_raw(body))


#: compression value → encoder; the value is also the Content-Encoding sent.
COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": functools.partial(gzip.compress, compresslevel=_ZLIB_LEVEL, mtime=0),
    "zstd": _zstd,
    "snappy": _snappy,
    # HTTP "deflate" is the zlib format (RFC 9110 8.4.1.2), as the Collector sends it.
    "deflate": functools.partial(zlib.compress, level=_ZLIB_LEVEL),
}


async def compress(encoding: str, body: bytes) -> bytes:
    """``body`` encoded with ``encoding`` (a key of :data:`COMPRESSIONS`); a large body is encoded in a thread."""
    encode = COMPRESSIONS[encoding]
    return await asyncio.to_thread(encode, body) if len(body) > _OFFLOAD_BYTES else encode(body)


def header_errors(headers: Mapping[str, str]) -> list[str]:
    """Why ``headers`` cannot be sent, one message per bad entry (values are never echoed: they carry secrets)."""
    errors = []
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(str(name)):  # match() lets a trailing newline through
            errors.append(f"headers::{name}: not a valid HTTP header name")
        elif "\n" in str(value) or "\r" in str(value):
            errors.append(f"headers::{name}: value must not contain line breaks")
    return errors


@dataclass(frozen=True)
class CORSConfig:
    """Cross-origin requests from browsers (the OpenTelemetry JS SDK posting OTLP/HTTP from a web page)."""

    #: Origins allowed to post, e.g. https://*.example.com; "*" allows any. Empty: CORS stays off.
    allowed_origins: list[str] = field(default_factory=list)
    #: Request headers allowed besides Accept, Content-Type, X-Requested-With (always allowed); "*" allows any.
    allowed_headers: list[str] = field(default_factory=list)
    #: Seconds a browser may cache a preflight answer; 0 sends no Access-Control-Max-Age.
    max_age: int = 0

    def validate(self) -> None:
        if self.max_age < 0:
            raise ConfigError(f"max_age: must be >= 0, got {self.max_age}")

    def origin_allowed(self, origin: str) -> bool:
        return any(pattern == "*" or fnmatch.fnmatchcase(origin, pattern) for pattern in self.allowed_origins)

    def headers_allowed(self, requested: str) -> bool:
        allowed = {"accept", "content-type", "x-requested-with", *(h.lower() for h in self.allowed_headers)}
        names = [h.strip().lower() for h in requested.split(",") if h.strip()]
        return "*" in allowed or all(name in allowed for name in names)


@dataclass(frozen=True)
class HTTPServerConfig:
    """The Collector's ``confighttp.ServerConfig``; a component's config extends it (its keys are top-level)."""

    #: host:port to listen on.
    endpoint: str = ""
    #: Serve HTTPS (mutual TLS with client_ca_file); certificates are reloaded when their files change.
    tls: TLSServerConfig | None = None
    #: Require credentials checked by an authenticator extension; failures get 401.
    auth: AuthConfig | None = None
    #: Cross-origin requests from browsers; off unless allowed_origins is set.
    cors: CORSConfig | None = None
    #: Largest request body accepted, in bytes (after decompression too); larger ones get 413.
    max_request_body_size: int = 64 * 1024 * 1024
    #: Keep the request's headers as client metadata with its data (the attributes processor's from_context,
    #: batch metadata_keys and headers_setter read it).
    include_metadata: bool = False
    #: Headers added to every response, e.g. {Strict-Transport-Security: max-age=31536000}.
    response_headers: dict[str, str] = field(default_factory=dict)

    def server_errors(self) -> list[str]:
        """The shared checks, for the component's ``validate`` to report with its own."""
        errors = [e.replace("headers::", "response_headers::", 1) for e in header_errors(self.response_headers)]
        if self.max_request_body_size <= 0:
            errors.append(f"max_request_body_size: must be > 0, got {self.max_request_body_size}")
        return errors

    def listen_errors(self) -> list[str]:
        """:meth:`server_errors` after the check that ``endpoint`` is a host:port to listen on."""
        try:
            split_host_port(self.endpoint)
        except ValueError as exc:
            return [f"endpoint: {exc}", *self.server_errors()]
        return self.server_errors()


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def server_middleware(config: HTTPServerConfig, handler: Handler, methods: tuple[str, ...] = ("POST",)) -> Handler:
    """``handler`` behind the CORS and ``response_headers`` settings of ``config`` (itself when neither is set).

    A CORS preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here with 204; an allowed
    origin asking for one of ``methods`` gets the Access-Control-Allow-* headers, another gets none, so the
    browser refuses the request.
    """
    cors = config.cors if config.cors is not None and config.cors.allowed_origins else None
    extra = dict(config.response_headers)
    if cors is None and not extra:
        return handler

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = cors is not None and origin is not None and cors.origin_allowed(origin)
        if (cors is not None and request.method == "OPTIONS" and origin is not None
                and "Access-Control-Request-Method" in request.headers):
            response: web.StreamResponse = web.Response(status=204, headers={"Vary": "Origin"})
            requested = request.headers.get("Access-Control-Request-Headers", "")
            if allowed and request.headers["Access-Control-Request-Method"].upper() in methods \
                    and cors.headers_allowed(requested):
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
                if requested:
                    response.headers["Access-Control-Allow-Headers"] = requested
                if cors.max_age:
                    response.headers["Access-Control-Max-Age"] = str(cors.max_age)
        else:
            response = await handler(request)
            if allowed:
                assert origin is not None
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers.add("Vary", "Origin")
        for name, value in extra.items():
            response.headers[name] = value
        return response

    return handle


_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class HTTPServer:
    """One listener answering GET (and HEAD) on fixed paths as an :class:`HTTPServerConfig` says; the server of
    every component that answers requests rather than takes data (health_check, zpages, pprof, the prometheus
    exporter). The otlp receiver, which reads bodies under admission control, has its own server built from the
    same blocks (:func:`server_middleware`, ``server_auth``, ``ReloadingServerTLS``).

    - ``tls``: HTTPS; the certificate, key and client CA are re-read when their files change;
    - ``auth``: a request without credentials the authenticator extension accepts gets 401 (a CORS preflight
      excepted: browsers send it without credentials);
    - ``cors`` and ``response_headers``: :func:`server_middleware`, preflights allowing GET;
    - ``max_request_body_size``: a request that declares a larger body gets 413 (these paths read no body);
    - ``include_metadata``: accepted; no data passes through these servers, so there is nothing to attach it to.

    ``check_host``: answer only requests whose Host is a loopback name, an IP literal or the configured host, so
    a web page that rebinds its domain name to 127.0.0.1 cannot read the server (a browser sends that name).
    """

    def __init__(self, component: str, config: HTTPServerConfig, routes: Mapping[str, Handler], *,
                 host: Host, logger: logging.LoggerAdapter[Any] | None = None, check_host: bool = False) -> None:
        self.component = component
        self.config = config
        self.routes = dict(routes)
        self.logger = logger or logging.LoggerAdapter(logging.getLogger("otelgw"), {})
        #: The authenticator's check; looked up here so a missing extension fails the component's start.
        self._authenticate = server_auth(host, config.auth, "auth", self.logger)
        self._hosts = _LOOPBACK_NAMES | {split_host_port(config.endpoint)[0].lower()} if check_host else None
        self._handler = server_middleware(config, self._dispatch, methods=("GET", "HEAD"))
        self.tls: ReloadingServerTLS | None = None
        self._reload: asyncio.Task[None] | None = None
        self._runner: web.ServerRunner | None = None
        #: ``host:port`` actually bound (the configured port may be 0), set by ``start``.
        self.address: str | None = None

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        name = request.headers.get("Host")
        if self._hosts is not None and name is not None and not self._host_allowed(host_name(name)):
            return web.Response(status=403, text=f"Host {name!r} is not accepted\n")
        if self._authenticate is not None and not self._authenticate(
                {k.lower(): v for k, v in request.headers.items()}):
            return web.Response(status=401, text="missing or invalid credentials\n",
                                headers={"WWW-Authenticate": "Bearer"})
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text=f"no such path; served: {', '.join(self.routes)}\n")
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text=f"{request.method} is not allowed; use GET\n",
                                headers={"Allow": "GET, HEAD"})
        declared = request.content_length
        if declared is not None and declared > self.config.max_request_body_size:
            response = web.Response(status=413, text=f"request body of {declared} bytes is over "
                                    f"max_request_body_size ({self.config.max_request_body_size} bytes)\n")
            response.force_close()  # its body is not read
            return response
        return await handler(request)

    def _host_allowed(self, name: str) -> bool:
        return (self._hosts is not None and name in self._hosts) or is_ip(name)

    async def _reload_tls(self, tls: ReloadingServerTLS) -> None:
        while True:
            await asyncio.sleep(tls.config.reload_interval)
            if tls.maybe_reload():
                self.logger.info("reloaded TLS certificates", extra={"cert_file": tls.config.cert_file})

    async def start(self) -> str:
        """Listen; returns every address bound. A port in use or a TLS file that does not load fails here."""
        if self.config.tls is not None:
            self.tls = ReloadingServerTLS(self.config.tls, self.logger.warning)
        server = web.Server(self._handler, access_log=None)
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        bind_host, port = split_host_port(self.config.endpoint)
        try:
            await web.TCPSite(runner, bind_host, port,
                              ssl_context=self.tls.ssl_context if self.tls is not None else None).start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error(self.component, self.config.endpoint, exc) from None
        self._runner = runner
        bound = runner.addresses[0]
        self.address = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
        if self.tls is not None and self.tls.config.reload_interval > 0:
            self._reload = asyncio.create_task(self._reload_tls(self.tls), name=f"{self.component} TLS reload")
        return format_addresses(runner.addresses)

    async def stop(self) -> None:
        task, self._reload = self._reload, None
        if task is not None:
            task.cancel()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


@dataclass(frozen=True)
class HTTPClientConfig:
    """The Collector's ``confighttp.ClientConfig``; an exporter's config extends it (its keys are top-level)."""

    #: URL of the server.
    endpoint: str = ""
    #: Client TLS for https:// URLs (the URL scheme decides whether TLS is used; tls::insecure is ignored).
    tls: TLSClientConfig = field(default_factory=TLSClientConfig)
    #: HTTP headers sent with every request, e.g. {X-Scope-OrgID: team-a}.
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # often carries credentials
    #: Body compression: gzip, zstd, snappy, deflate or none.
    compression: str = "gzip"
    #: Deadline of one request, connecting included.
    timeout: Duration = 5.0
    #: Bytes aiohttp reads from the socket at once (its read buffer); 0 keeps aiohttp's 64 KiB.
    read_buffer_size: int = 0
    #: Kernel send buffer of each connection (SO_SNDBUF) in bytes; 0 keeps the system's.
    write_buffer_size: int = 0
    #: Add credentials from an authenticator extension (basicauth client_auth, bearertokenauth...) to each request.
    auth: AuthConfig | None = None
    #: Send through this HTTP proxy, e.g. http://proxy:3128 (an https:// endpoint is tunnelled with CONNECT).
    proxy_url: str = ""

    def client_errors(self, body_encoding: str = "") -> list[str]:
        """The shared checks (endpoint excepted: its rules differ per exporter), for the exporter's ``validate``.
        ``body_encoding``: set by exporters whose protocol compresses the body itself (Loki, remote write), which
        then refuse another compression."""
        errors = header_errors(self.headers)
        if body_encoding and self.compression not in ("none", ""):
            errors.append(f"compression: the body is already {body_encoding}-compressed by the protocol; "
                          f"leave compression out (or none)")
        elif self.compression not in (*COMPRESSIONS, "none", ""):
            errors.append(f"compression: must be one of {', '.join(COMPRESSIONS)} or none, "
                          f"got {self.compression!r}")
        if self.timeout <= 0:
            errors.append("timeout: must be > 0")
        for key in ("read_buffer_size", "write_buffer_size"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0 (0 = default), got {getattr(self, key)}")
        if self.proxy_url:
            try:
                proxy = URL(self.proxy_url)
            except (ValueError, TypeError):
                proxy = URL()
            if proxy.scheme != "http" or not proxy.host:
                errors.append(f"proxy_url: must be an http:// URL with a host, got {self.proxy_url!r}")
        return errors


class HTTPClient:
    """One connection pool posting bodies as ``config`` says; created in an exporter's ``start``.

    ``post`` compresses the body, adds the configured headers and the authenticator's credentials (asked per
    request), and goes through the proxy when one is set. A rotated client certificate applies to new
    connections (``ReloadingClientTLS``).
    """

    def __init__(self, config: HTTPClientConfig, host: Host, *, https: bool, key: str = "auth",
                 user_agent: str = "") -> None:
        self.config = config
        self._tls = ReloadingClientTLS(config.tls) if https else None
        self._credentials: ClientHeaders | None = client_auth(host, config.auth, key)
        self._encoding = config.compression if config.compression in COMPRESSIONS else ""
        self._headers = {**({"User-Agent": user_agent} if user_agent else {}), **config.headers}
        if self._encoding:
            self._headers["Content-Encoding"] = self._encoding
        self._options: dict[str, Any] = {}
        if config.tls.server_name_override:
            self._options["server_hostname"] = config.tls.server_name_override
        if config.proxy_url:
            self._options["proxy"] = config.proxy_url
        connector = aiohttp.TCPConnector(ssl=self._tls.ssl_context if self._tls is not None else False,
                                         socket_factory=self._socket if config.write_buffer_size else None)
        session_options: dict[str, Any] = {}
        if config.read_buffer_size:
            session_options["read_bufsize"] = config.read_buffer_size
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=config.timeout),
                                             **session_options)

    def _socket(self, addr_info: Any) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.write_buffer_size)
        return sock

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """POST ``body`` (compressed here) with ``headers`` on top of the configured ones. Use as
        ``async with await client.post(...) as response``; the caller reads and maps the answer."""
        if self._tls is not None:
            self._tls.maybe_reload()
        if self.session.closed:
            raise RetryableError("exporter is not started")
        if self._encoding:
            body = await compress(self._encoding, body)
        all_headers = {**self._headers, **headers}
        if self._credentials is not None:
            all_headers = self._credentials(all_headers)
        return await self.session.post(url, data=body, headers=all_headers, **self._options)

    async def close(self) -> None:
        await self.session.close()
