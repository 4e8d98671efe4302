"""A real OTLP server for tests: gRPC and HTTP on 127.0.0.1, recording every request, failing on demand.

    sink = OtlpSink()
    await sink.start()
    exporter_config = Config(endpoint=sink.grpc_endpoint, tls=TLSClientConfig(insecure=True))
    sink.fail_next(3, grpc_code=grpc.StatusCode.UNAVAILABLE, http_status=503)   # then it recovers
    ...
    assert sink.item_count(Signal.TRACES) == 100 and len(sink.received(Signal.TRACES)) == 4
    await sink.stop()

It decodes what it receives (protobuf or OTLP/JSON, gzip or not) with the opentelemetry-proto messages only,
so it is independent of the gateway's own receiver. Scripted outcomes apply to the next requests in arrival
order, whatever their signal and transport.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cramjam
import grpc
from aiohttp import web
from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from gateway import otlpjson
from gateway.component import Batch, Signal, count_items
from gateway.errors import PermanentError

__all__ = ["OtlpSink", "Received"]

# signal → (gRPC service, request type, response type, HTTP path, partial-success counter field)
_SERVICES: dict[Signal, tuple[str, type[Message], type[Message], str, str]] = {
    Signal.TRACES: ("opentelemetry.proto.collector.trace.v1.TraceService", trace_pb.ExportTraceServiceRequest,
                    trace_pb.ExportTraceServiceResponse, "/v1/traces", "rejected_spans"),
    Signal.METRICS: ("opentelemetry.proto.collector.metrics.v1.MetricsService",
                     metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse,
                     "/v1/metrics", "rejected_data_points"),
    Signal.LOGS: ("opentelemetry.proto.collector.logs.v1.LogsService", logs_pb.ExportLogsServiceRequest,
                  logs_pb.ExportLogsServiceResponse, "/v1/logs", "rejected_log_records"),
}


@dataclass(frozen=True)
class _Failure:
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after: float | None
    message: str


@dataclass(frozen=True)
class _Partial:
    rejected: int
    message: str


@dataclass
class Received:
    """One request as the sink saw it, accepted or not."""

    signal: Signal
    transport: str  # "grpc" or "http"
    batch: Batch
    #: gRPC metadata or HTTP headers, keys lower-cased.
    headers: dict[str, str]
    #: time.monotonic() on arrival, for asserting on the waits between retries.
    at: float
    accepted: bool
    content_type: str = "application/grpc"
    #: The request's serialized bytes as they arrived (after decompression; empty for OTLP/JSON).
    body: bytes = b""


class OtlpSink:
    """OTLP/gRPC and OTLP/HTTP server on loopback. Extra ``grpc_options`` go to ``grpc.aio.server``; with
    ``tls=(cert_file, key_file)`` both servers speak TLS only."""

    def __init__(self, *, grpc_options: Sequence[tuple[str, Any]] = (),
                 tls: tuple[str, str] | None = None) -> None:
        self.grpc_options = list(grpc_options)
        self.tls = tls
        #: Every request received, accepted or failed, in arrival order.
        self.requests: list[Received] = []
        self.grpc_port = 0
        self.http_port = 0
        #: Seconds every export waits before it is taken and answered: a slow backend, whose capacity is then
        #: known (the exporter's consumers x items per request / delay). May be changed while serving.
        self.delay = 0.0
        self._script: deque[_Failure | _Partial] = deque()
        self._refuse: Callable[[Batch], str | None] | None = None
        self._grpc_server: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        server = grpc.aio.server(options=self.grpc_options)
        for signal, (service, _, response_type, _, _) in _SERVICES.items():
            handler = grpc.unary_unary_rpc_method_handler(  # parsed in the handler, which keeps the bytes too
                self._grpc_handler(signal), request_deserializer=None,
                response_serializer=response_type.SerializeToString)
            generic = grpc.method_handlers_generic_handler(service, {"Export": handler})
            server.add_generic_rpc_handlers((generic,))
        if self.tls:
            cert, key = (Path(f).read_bytes() for f in self.tls)
            self.grpc_port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
        else:
            self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._grpc_server = server
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for signal, (*_, path, _) in _SERVICES.items():
            app.router.add_post(path, self._http_handler(signal))
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.http_port = sock.getsockname()[1]
        ssl_context = None
        if self.tls:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(*self.tls)
        await web.SockSite(self._runner, sock, ssl_context=ssl_context).start()

    async def stop(self) -> None:
        if self._grpc_server is not None:
            await self._grpc_server.stop(None)
            self._grpc_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---------------------------------------------------------------- scripting

    def fail_next(self, n: int = 1, *, grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
                  http_status: int = 503, retry_after: float | None = None,
                  message: str = "scripted failure") -> None:
        """Fail the next ``n`` requests; ``retry_after`` (s) adds RetryInfo (gRPC) or Retry-After (HTTP)."""
        self._script.extend(_Failure(grpc_code, http_status, retry_after, message) for _ in range(n))

    def refuse_when(self, reason: Callable[[Batch], str | None] | None) -> None:
        """Refuse as permanently invalid (``INVALID_ARGUMENT``/``400``) every request for which ``reason`` gives
        a message, as a backend does with an item it cannot take; ``None`` stops refusing."""
        self._refuse = reason

    def partial_success_next(self, n: int = 1, *, rejected: int, message: str = "rejected by sink") -> None:
        """Accept the next ``n`` requests but answer partial success with ``rejected`` items."""
        self._script.extend(_Partial(rejected, message) for _ in range(n))

    # ---------------------------------------------------------------- reading what arrived

    def received(self, signal: Signal) -> list[Received]:
        """Every request of ``signal``, failed ones included, in arrival order."""
        return [r for r in self.requests if r.signal is signal]

    def batches(self, signal: Signal) -> list[Batch]:
        """The accepted requests of ``signal``."""
        return [r.batch for r in self.requests if r.signal is signal and r.accepted]

    def item_count(self, signal: Signal) -> int:
        return sum(count_items(signal, b) for b in self.batches(signal))

    def spans(self) -> list[Any]:
        return [s for b in self.batches(Signal.TRACES) for rs in b.resource_spans  # type: ignore[union-attr]
                for ss in rs.scope_spans for s in ss.spans]

    def clear(self) -> None:
        self.requests.clear()
        self._script.clear()

    # ---------------------------------------------------------------- serving

    def _record(self, signal: Signal, transport: str, batch: Batch, headers: dict[str, str],
                content_type: str, body: bytes = b"") -> _Failure | _Partial | None:
        outcome = self._script.popleft() if self._script else None
        refusal = self._refuse(batch) if self._refuse is not None and outcome is None else None
        if refusal is not None:
            outcome = _Failure(grpc.StatusCode.INVALID_ARGUMENT, 400, None, refusal)
        accepted = not isinstance(outcome, _Failure)
        received = Received(signal, transport, batch, headers, time.monotonic(), accepted, content_type, body)
        self.requests.append(received)
        return outcome

    def _response(self, signal: Signal, outcome: _Failure | _Partial | None) -> Message:
        response = _SERVICES[signal][2]()
        if isinstance(outcome, _Partial):
            partial = response.partial_success  # type: ignore[attr-defined]
            setattr(partial, _SERVICES[signal][4], outcome.rejected)
            partial.error_message = outcome.message
        return response

    def _grpc_handler(self, signal: Signal) -> Any:
        request_type = _SERVICES[signal][1]

        async def export(body: bytes, context: grpc.aio.ServicerContext) -> Message:
            if self.delay:
                await asyncio.sleep(self.delay)
            try:
                request: Any = request_type.FromString(body)
            except DecodeError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode request: {exc}")
            headers = {m.key: m.value for m in context.invocation_metadata() or ()}
            outcome = self._record(signal, "grpc", request, headers, "application/grpc", body)
            if isinstance(outcome, _Failure):
                trailers: tuple[tuple[str, bytes], ...] = ()
                if outcome.retry_after is not None:
                    status = _status(outcome.message, outcome.retry_after, outcome.grpc_code.value[0])
                    trailers = (("grpc-status-details-bin", status.SerializeToString()),)
                await context.abort(outcome.grpc_code, outcome.message, trailing_metadata=trailers)
            return self._response(signal, outcome)

        return export

    def _http_handler(self, signal: Signal) -> Any:
        request_type = _SERVICES[signal][1]

        async def export(request: web.Request) -> web.Response:
            if self.delay:
                await asyncio.sleep(self.delay)
            try:  # decoded here, not by aiohttp: it knows neither snappy nor (without extras) zstd
                body = _DECODE[request.headers.get("Content-Encoding", "identity").lower()](await request.read())
            except (KeyError, OSError, EOFError, cramjam.DecompressionError, zlib.error) as exc:
                return _http_answer(400, _status(f"cannot decompress body: {exc!r}"), False)
            is_json = request.content_type == "application/json"
            try:
                batch = otlpjson.decode(body, request_type) if is_json else request_type.FromString(body)
            except (PermanentError, DecodeError) as exc:
                return _http_answer(400, _status(f"cannot decode body: {exc}"), is_json)
            headers = {k.lower(): v for k, v in request.headers.items()}
            outcome = self._record(signal, "http", batch, headers, request.content_type, b"" if is_json else body)
            if isinstance(outcome, _Failure):
                extra = {} if outcome.retry_after is None else {"Retry-After": f"{outcome.retry_after:g}"}
                return _http_answer(outcome.http_status, _status(outcome.message), is_json, extra)
            return _http_answer(200, self._response(signal, outcome), is_json)

        return export


#: Content-Encoding → decoder, for every compression an exporter may send (gateway.confighttp.COMPRESSIONS).
_DECODE: dict[str, Callable[[bytes], bytes]] = {
    "identity": lambda body: body,
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "zstd": lambda body: bytes(cramjam.zstd.decompress(body)),
    "snappy": lambda body: bytes(cramjam.snappy.decompress_raw(body)),
}


def _status(message: str, retry_after: float | None = None, code: int = 0) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message=message)
    if retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(retry_after * 1e9))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
    return status


def _http_answer(status: int, message: Message, is_json: bool,
                 headers: dict[str, str] | None = None) -> web.Response:
    if is_json:
        body = json_format.MessageToJson(message, indent=None).encode()
        return web.Response(status=status, body=body, content_type="application/json", headers=headers)
    return web.Response(status=status, body=message.SerializeToString(),
                        content_type="application/x-protobuf", headers=headers)
