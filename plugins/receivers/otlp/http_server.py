"""OTLP/HTTP: POST protobuf or JSON on the traces, metrics and logs paths, on one low-level aiohttp server.

Every answer that is not 200 carries a google.rpc.Status in the request's content type (JSON when that type
is not one we speak). Bodies are read with a cap, and gzip/deflate bodies are inflated with the same cap on
the output, so neither a huge upload nor a zip bomb takes more than ``max_request_body_size`` of memory each.
aiohttp's own request decompression is off for that reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from google.protobuf.message import Message

from gateway import (
    Batch,
    Budget,
    ClientInfo,
    OverloadedError,
    PermanentError,
    ReloadingServerTLS,
    Reservation,
    Signal,
    TooLargeError,
    WireBatch,
    format_addresses,
    listen_error,
    otlpjson,
    server_middleware,
    shared_ports,
    split_host_port,
    status_for,
)

from .config import HttpConfig
from .http_guard import GuardedServer
from .responses import RESPONSE_TYPES, dialable, status_message

if TYPE_CHECKING:
    from .receiver import Route

#: Seconds that requests in flight get to finish delivering when the receiver shuts down.
SHUTDOWN_GRACE_S = 5.0

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Content-Encoding → zlib wbits. HTTP "deflate" is the zlib format (RFC 9110 8.4.1.2), as in the Collector.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _BadRequest(PermanentError):
    """Bad input caught at the HTTP edge; ``reason`` labels the bad-request counter."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class _TooSlow(_BadRequest):
    """A body that trickles in (slowloris): answered 408, and the connection is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "slow_body")


class _TooLarge(TooLargeError):
    reason = "too_large"


def _decode_protobuf(body: bytes, take: Callable[[bytes], Batch | WireBatch]) -> Batch | WireBatch:
    """``take``: the route's check (``Route.take``), which gives the body as bytes or parsed."""
    try:
        return take(body)
    except Exception as exc:  # any parse failure of untrusted bytes is the sender's fault
        raise _BadRequest(f"malformed protobuf body ({len(body)} bytes): {exc}", "malformed") from None


def _decode_json(body: bytes, message_type: type[Batch]) -> Batch:
    try:
        return otlpjson.decode(body, message_type)
    except PermanentError:
        raise
    except Exception as exc:  # e.g. RecursionError from absurdly nested JSON
        raise _BadRequest(f"invalid OTLP/JSON: {exc!r}", "malformed") from None


#: The content types taken, each with the decoder ``_handle`` uses.
_DECODERS: dict[str, Callable[[bytes, Any], Batch | WireBatch]] = {PROTOBUF: _decode_protobuf, JSON: _decode_json}
_ENCODERS: dict[str, Callable[[Message], bytes]] = {
    PROTOBUF: lambda message: message.SerializeToString(), JSON: otlpjson.encode}


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """Decompress ``body``, stopping as soon as the output would pass ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    data = body
    while data:  # a gzip body may be several members back to back (RFC 1952 2.2)
        inflater = zlib.decompressobj(_WBITS[encoding])
        try:
            part = inflater.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise _BadRequest(f"request body is not valid {encoding}: {exc}", "bad_compression") from None
        size += len(part)
        if size > limit:
            raise _TooLarge(f"request body is over max_request_body_size ({limit} bytes) after decompression")
        if not inflater.eof:
            raise _BadRequest(f"request body is not valid {encoding}: the stream is truncated",
                              "bad_compression")
        parts.append(part)
        data = inflater.unused_data
    return b"".join(parts)


class _ProtocolLog:
    """aiohttp's logger for requests it could not finish. A client's malformed HTTP or early hang-up is the
    client's problem and must not flood the log, so DEBUG; any other exception is our bug, so ERROR."""

    def __init__(self, logger: logging.LoggerAdapter[Any]) -> None:
        self._logger = logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._logger.debug(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        client_side = isinstance(exc, HttpProcessingError | ConnectionError | RequestPayloadError)
        self._logger.log(logging.DEBUG if client_side else logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)


class HttpServer:
    def __init__(self, config: HttpConfig, routes: Mapping[Signal, Route | None],
                 bad_request: Callable[[str], None], logger: logging.LoggerAdapter[Any], *,
                 tls: ReloadingServerTLS | None = None, authenticate: Callable[[Any], bool] | None = None) -> None:
        self.config = config
        self.tls = tls
        self.authenticate = authenticate
        self.bad_request = bad_request
        self.logger = logger
        self.limit = config.max_request_body_size
        #: Bytes of request bodies in flight on this server.
        self.budget = Budget(config.max_in_flight_size_mib * 1024 * 1024)
        self._paths: dict[str, tuple[Signal, Route | None]] = {
            config.traces_url_path: (Signal.TRACES, routes[Signal.TRACES]),
            config.metrics_url_path: (Signal.METRICS, routes[Signal.METRICS]),
            config.logs_url_path: (Signal.LOGS, routes[Signal.LOGS]),
        }
        self._success = {(signal, ctype): encode(RESPONSE_TYPES[signal]())
                         for signal in Signal for ctype, encode in _ENCODERS.items()}
        self._runner: web.ServerRunner | None = None
        #: Every address bound (``0.0.0.0:4318`` means every interface).
        self.listening = ""

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        content_type = request.content_type
        reply_type = content_type if content_type in _DECODERS else JSON
        entry = self._paths.get(request.path)
        if entry is None:
            known = ", ".join(self._paths)
            return self._reject(reply_type, 404, "not_found",
                                f"unknown path {request.path!r}; OTLP paths: {known}")
        signal, route = entry
        if self.authenticate is not None and not self.authenticate(
                {k.lower(): v for k, v in request.headers.items()}):
            return self._reject(reply_type, 401, "unauthenticated", "missing or invalid credentials",
                                {"WWW-Authenticate": "Bearer"})
        if route is None:
            return self._reject(reply_type, 404, "unwired_signal",
                                f"this receiver takes no {signal.value}: no {signal.value} pipeline lists it")
        if request.method != "POST":
            return self._reject(reply_type, 405, "method_not_allowed",
                                f"{request.method} is not allowed on {request.path}; OTLP uses POST",
                                {"Allow": "POST"})
        if content_type not in _DECODERS:
            return self._reject(reply_type, 415, "unsupported_content_type",
                                f"unsupported Content-Type {content_type!r}; use {PROTOBUF} or {JSON}")
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in _WBITS and encoding not in ("", "identity"):
            return self._reject(reply_type, 415, "unsupported_encoding",
                                f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
        # Every byte read, inflated, decoded and delivered is reserved first (gateway.Budget, gateway.Reservation),
        # and given back when the answer is ready.
        with Reservation(self.budget) as reservation:
            try:
                body = await self._read_body(request, reservation)
                if encoding in _WBITS:
                    inflated = inflate(body, encoding, self.limit)
                    reservation.grow(len(inflated) - len(body))
                    body = inflated
                # An empty body is an empty request in either encoding (an empty string is not valid JSON).
                batch = (signal.request_type() if not body
                         else _DECODERS[content_type](body, route.take if content_type == PROTOBUF
                                                      else signal.request_type))
            except OverloadedError as exc:
                self.bad_request("overloaded")
                # Not closed: the sender must see the 429 to back off, and aiohttp drains the unread body into
                # nothing (it is not kept) before the connection serves the next request.
                return self._failure(reply_type, exc, close=False)
            except PermanentError as exc:
                self.bad_request(getattr(exc, "reason", "malformed"))
                if self.logger.isEnabledFor(logging.DEBUG):
                    self.logger.debug("bad OTLP/HTTP request: %s", exc, extra={"path": request.path})
                if isinstance(exc, _TooSlow):
                    # Answered, then the socket closed: aiohttp would otherwise keep waiting for the body's rest.
                    response = self._respond(reply_type, 408, 4, str(exc))  # 4: DEADLINE_EXCEEDED
                    response.force_close()
                    await response.prepare(request)
                    await response.write_eof()
                    if request.transport is not None:
                        request.transport.close()
                    return response
                # Stop a sender that is over the limit from streaming the rest of it into us.
                return self._failure(reply_type, exc, close=isinstance(exc, TooLargeError))
            rejection = route.screen(batch, body if content_type == PROTOBUF else None)
            # Protobuf bodies go along as the batch's wire bytes (gateway.wirebytes); JSON has none, and neither
            # has a batch that screening changed.
            sender = None
            if self.config.include_metadata:
                peer = request.transport.get_extra_info("peername") if request.transport is not None else None
                address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""
                sender = ClientInfo.of(request.headers.items(), address)
            failure = await route.deliver(batch, body if content_type == PROTOBUF and rejection is None else None,
                                          sender)
        if failure is None or failure.http_status == 200:
            reply = (self._success[(signal, content_type)] if rejection is None
                     else _ENCODERS[content_type](rejection.response(signal)))
            return web.Response(body=reply, headers={"Content-Type": content_type})
        return self._respond(reply_type, failure.http_status, failure.grpc_code.value[0], failure.message,
                             failure.retry_after)

    async def _read_body(self, request: web.BaseRequest, reservation: Reservation) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self.limit:
            raise _TooLarge(f"request body of {declared} bytes is over max_request_body_size "
                            f"({self.limit} bytes)")
        if declared:
            reservation.grow(declared)  # before reading a byte of it
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.config.read_timeout or None):
                while chunk := await request.content.readany():
                    if declared is None:
                        reservation.grow(len(chunk))
                    size += len(chunk)
                    if size > self.limit:
                        raise _TooLarge(f"request body is over max_request_body_size ({self.limit} bytes)")
                    chunks.append(chunk)
        except (ConnectionError, RequestPayloadError) as exc:  # the sender hung up or broke the framing
            raise _BadRequest(f"the request body could not be read: {exc}", "incomplete_body") from None
        except TimeoutError:
            raise _TooSlow(f"the request body did not arrive within read_timeout "
                           f"({self.config.read_timeout:g}s)") from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _reject(self, reply_type: str, http_status: int, reason: str, message: str,
                headers: dict[str, str] | None = None) -> web.Response:
        self.bad_request(reason)
        return self._respond(reply_type, http_status, 0, message, headers=headers)

    def _failure(self, reply_type: str, exc: Exception, close: bool) -> web.Response:
        mapping = status_for(exc)
        response = self._respond(reply_type, mapping.http_status, mapping.grpc_code.value[0], mapping.message,
                                 mapping.retry_after)
        if close:
            response.force_close()
        return response

    def _respond(self, reply_type: str, http_status: int, grpc_code: int, message: str,
                 retry_after: float | None = None, headers: dict[str, str] | None = None) -> web.Response:
        """An error answer: google.rpc.Status in ``reply_type``, with Retry-After when a delay is known."""
        all_headers = {"Content-Type": reply_type, **(headers or {})}
        if retry_after is not None and http_status in (429, 503):
            all_headers["Retry-After"] = str(math.ceil(retry_after))
        body = _ENCODERS[reply_type](status_message(grpc_code, message, retry_after))
        return web.Response(status=http_status, body=body, headers=all_headers)

    async def start(self) -> str:
        # auto_decompress off: aiohttp would inflate without a size cap.
        # CORS and response_headers wrap the handler (gateway.confighttp).
        server = GuardedServer(server_middleware(self.config, self._handle),
                               max_connections=self.config.max_connections,
                               read_header_timeout=self.config.read_header_timeout,
                               idle_timeout=self.config.idle_timeout,
                               on_refused=lambda: self.bad_request("too_many_connections"),
                               on_slow_header=lambda: self.bad_request("slow_header"),
                               guard_logger=self.logger, access_log=None, auto_decompress=False,
                               logger=_ProtocolLog(self.logger))
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_GRACE_S)
        await runner.setup()
        host, port = split_host_port(self.config.endpoint)
        try:
            ssl_context = self.tls.ssl_context if self.tls is not None else None
            await web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_port=shared_ports() or None).start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error("otlp receiver (HTTP)", self.config.endpoint, exc) from None
        self._runner = runner
        self.listening = format_addresses(runner.addresses)
        return dialable(host, runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
