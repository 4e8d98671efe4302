"""OTLP/gRPC: the Trace, Metrics and Logs ``Export`` services on one ``grpc.aio`` server.

Requests arrive as raw bytes (identity deserializer) and are checked in the handler (``Route.take``: in C,
without a parse, where the extension is built), so a body that is not the expected message is answered
INVALID_ARGUMENT with the reason, not INTERNAL. grpc itself enforces the size
limit (after decompression) and handles ``grpc-encoding: gzip``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import grpc
from grpc_status import rpc_status

from gateway import (
    MIB,
    Budget,
    ClientInfo,
    OverloadedError,
    ReloadingServerTLS,
    Signal,
    StatusMapping,
    listen_error,
    shared_ports,
    split_host_port,
    status_for,
)

from .config import GrpcConfig
from .responses import RESPONSE_TYPES, dialable, status_message
from .tls_front import TlsFront, needs_front

if TYPE_CHECKING:
    from .receiver import Route

#: Seconds that requests in flight get to finish delivering when the receiver shuts down.
SHUTDOWN_GRACE_S = 5.0

SERVICES = {
    Signal.TRACES: "opentelemetry.proto.collector.trace.v1.TraceService",
    Signal.METRICS: "opentelemetry.proto.collector.metrics.v1.MetricsService",
    Signal.LOGS: "opentelemetry.proto.collector.logs.v1.LogsService",
}


async def abort(context: grpc.aio.ServicerContext, failure: StatusMapping) -> NoReturn:
    """End the call with ``failure``; a retry delay travels as google.rpc.RetryInfo in the status details."""
    if failure.retry_after is None:
        await context.abort(failure.grpc_code, failure.message)
    status = status_message(failure.grpc_code.value[0], failure.message, failure.retry_after)
    rich = rpc_status.to_status(status)
    await context.abort(rich.code, rich.details, rich.trailing_metadata)
    raise AssertionError("unreachable: abort() raises")


def _sender(context: grpc.aio.ServicerContext) -> ClientInfo:
    peer = context.peer() or ""  # "ipv4:127.0.0.1:50512", "ipv6:[::1]:50512", "unix:/path"
    return ClientInfo.of(context.invocation_metadata() or (), peer.partition(":")[2] if ":" in peer else peer)


class _UnknownMethod(grpc.GenericRpcHandler):
    """Takes every method the OTLP services do not, so a sender on the wrong path is counted (``unknown_method``)
    and told which methods there are, instead of getting grpc's bare UNIMPLEMENTED."""

    _METHODS = ", ".join(f"/{service}/Export" for service in SERVICES.values())

    def __init__(self, bad_request: Callable[[str], None]) -> None:
        self._bad_request = bad_request

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method  # type: ignore[attr-defined]
        bad_request, methods = self._bad_request, self._METHODS

        async def unknown(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            bad_request("unknown_method")
            await context.abort(grpc.StatusCode.UNIMPLEMENTED,
                                f"unknown method {method}; OTLP/gRPC serves {methods}")
            raise AssertionError("unreachable: abort() raises")

        return grpc.unary_unary_rpc_method_handler(unknown)


class _Authenticated(grpc.GenericRpcHandler):
    """Checks credentials when the call's metadata has arrived, before its message is read.

    grpcio reads a unary request whole before it calls the handler, so an unauthenticated call is given a
    stream-unary handler instead: it aborts without ever asking for the message. What grpc core may already hold
    is what HTTP/2 flow control let the client send (the stream window), not the message up to
    max_recv_msg_size_mib."""

    def __init__(self, handlers: tuple[grpc.GenericRpcHandler, ...], authenticate: Callable[[Any], bool],
                 bad_request: Callable[[str], None]) -> None:
        self._handlers = handlers
        self._authenticate = authenticate

        async def refuse(requests: Any, context: grpc.aio.ServicerContext) -> bytes:
            bad_request("unauthenticated")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid credentials")
            raise AssertionError("unreachable: abort() raises")

        self._refusal = grpc.stream_unary_rpc_method_handler(refuse)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        metadata = {item[0]: item[1] for item in
                    handler_call_details.invocation_metadata or ()  # type: ignore[attr-defined]
                    if isinstance(item[1], str)}
        if not self._authenticate(metadata):
            return self._refusal
        for handler in self._handlers:
            found = handler.service(handler_call_details)
            if found is not None:
                return found
        return None


class GrpcServer:
    def __init__(self, config: GrpcConfig, routes: dict[Signal, Route | None],
                 bad_request: Callable[[str], None], logger: logging.LoggerAdapter[Any], *,
                 tls: ReloadingServerTLS | None = None, authenticate: Callable[[Any], bool] | None = None) -> None:
        self.config = config
        self.tls = tls
        self.authenticate = authenticate
        self.routes = routes
        self.bad_request = bad_request
        self.logger = logger
        #: Bytes of requests in flight on this server (shared by its three services).
        self.budget = Budget(config.max_in_flight_size_mib * MIB)
        self._server: grpc.aio.Server | None = None
        self._front: TlsFront | None = None
        #: The address bound, as configured with the actual port (``0.0.0.0:4317`` means every interface).
        self.listening = ""

    def _handler(self, signal: Signal) -> grpc.RpcMethodHandler:
        route = self.routes[signal]
        bad_request = self.bad_request
        if route is None:
            unwired = f"this receiver takes no {signal.value}: no {signal.value} pipeline lists it"

            async def unimplemented(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
                bad_request("unwired_signal")
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, unwired)
                raise AssertionError("unreachable: abort() raises")

            return grpc.unary_unary_rpc_method_handler(unimplemented)

        take = route.take
        success = RESPONSE_TYPES[signal]().SerializeToString()
        deliver, screen = route.deliver, route.screen
        budget = self.budget
        include_metadata = self.config.include_metadata

        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            try:  # before parsing: what parsing and delivery will take must fit in the budgets
                reservation = budget.reserve(len(request))
            except OverloadedError as exc:
                bad_request("overloaded")
                await abort(context, status_for(exc))
            with reservation:
                try:
                    batch = take(request)
                except Exception as exc:  # any parse failure of untrusted bytes is the sender's fault
                    bad_request("malformed")
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                        f"malformed request ({len(request)} bytes): {exc}")
                rejection = screen(batch, request)
                sender = _sender(context) if include_metadata else None
                failure = await deliver(batch, request if rejection is None else None, sender)
            if failure is not None and failure.grpc_code is not grpc.StatusCode.OK:
                await abort(context, failure)
            return success if rejection is None else rejection.response(signal).SerializeToString()

        # No serializers: the handler gets and returns bytes, so parsing happens (and fails) where we see it.
        return grpc.unary_unary_rpc_method_handler(export)

    async def start(self) -> str:
        # Only the workers of one gateway (otelgw run --workers N) share a port; otherwise a second gateway on the
        # same port would silently share it instead of failing.
        options: list[tuple[str, Any]] = [*self.config.server_options(),
                                          ("grpc.so_reuseport", 1 if shared_ports() else 0)]
        server = self._server = grpc.aio.server(options=options)
        handlers: tuple[grpc.GenericRpcHandler, ...] = (
            *(grpc.method_handlers_generic_handler(service, {"Export": self._handler(signal)})
              for signal, service in SERVICES.items()),
            _UnknownMethod(self.bad_request))  # last: asked only when no service above takes the method
        if self.authenticate is not None:
            handlers = (_Authenticated(handlers, self.authenticate, self.bad_request),)
        server.add_generic_rpc_handlers(handlers)
        front = needs_front(self.tls)
        try:
            if front:  # plaintext on loopback, behind TLS done in Python (tls_front.py)
                port = server.add_insecure_port("127.0.0.1:0")
            elif self.tls is not None:
                port = server.add_secure_port(self.config.endpoint, self.tls.grpc_credentials())
            else:
                port = server.add_insecure_port(self.config.bind_target)
        except RuntimeError as exc:
            raise listen_error("otlp receiver (gRPC)", self.config.endpoint, exc) from None
        await server.start()
        if self.config.transport == "unix":
            self.listening = self.config.bind_target
            return self.config.bind_target
        host, _ = split_host_port(self.config.endpoint)
        self.listening = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if front:
            assert self.tls is not None
            self._front = TlsFront(self.config.endpoint, self.tls, port)
            try:
                port = await self._front.start()
            except BaseException:
                await self.stop()
                raise
            self.listening = self._front.listening
        return dialable(host, port)

    async def stop(self) -> None:
        front, self._front = self._front, None
        if front is not None:
            front.stop_accepting()
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop(SHUTDOWN_GRACE_S)  # drains through the front's open connections
        if front is not None:
            await front.close()
