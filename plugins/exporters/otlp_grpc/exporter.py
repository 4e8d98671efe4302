"""Sends one signal's batches to an OTLP/gRPC server over a grpc.aio channel, through the exporter helper.

Batches go out as they are: the request message is serialized by grpc, never copied or converted. Failed
calls become RetryableError or PermanentError per the OTLP status table (``helpers.exporter.grpc_error``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from gateway.component import Batch, ComponentSettings, Signal
from gateway.configblocks import ReloadingClientTLS
from gateway.errors import RetryableError
from gateway.helpers.exporter import USER_AGENT, ExporterHelper, PartialSuccess, grpc_error

from .config import Config, parse_endpoint

# signal → (method path, request type, response type, partial-success counter field)
_METHODS: dict[Signal, tuple[str, type[Message], type[Message], str]] = {
    Signal.TRACES: ("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                    trace_pb.ExportTraceServiceRequest, trace_pb.ExportTraceServiceResponse,
                    "rejected_spans"),
    Signal.METRICS: ("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
                     metrics_pb.ExportMetricsServiceRequest, metrics_pb.ExportMetricsServiceResponse,
                     "rejected_data_points"),
    Signal.LOGS: ("/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                  logs_pb.ExportLogsServiceRequest, logs_pb.ExportLogsServiceResponse,
                  "rejected_log_records"),
}


class OtlpGrpcExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.signal = settings.signal or Signal.TRACES
        self.target, self.secure = parse_endpoint(config.endpoint, config.tls.insecure)
        self._metadata = tuple(
            (key.lower(), value.encode() if key.lower().endswith("-bin") else value)
            for key, value in config.headers.items())
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._tls: ReloadingClientTLS | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure)
        setattr(self, f"consume_{self.signal.value}", self._helper.consume)

    def _open_channel(self) -> None:
        """A channel with the current credentials (grpc channels cannot swap credentials in place)."""
        tls = self.config.tls
        options: list[tuple[str, Any]] = [("grpc.primary_user_agent", USER_AGENT)]
        if self.secure and tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", tls.server_name_override))
        gzip = self.config.compression == "gzip"
        compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
        if self.secure:
            self._channel = grpc.aio.secure_channel(self.target, tls.grpc_credentials(), options, compression)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options, compression)
        path, request_type, response_type, _ = _METHODS[self.signal]
        self._call = self._channel.unary_unary(path, request_serializer=request_type.SerializeToString,
                                               response_deserializer=response_type.FromString)

    async def start(self, host: Any) -> None:
        if self.secure:
            self._tls = ReloadingClientTLS(self.config.tls)
        self._open_channel()
        await self._helper.start(host)

    async def _reopen_if_certificates_changed(self) -> None:
        if self._tls is None or not self._tls.maybe_reload():
            return
        old = self._channel
        self._open_channel()
        if old is not None:  # calls in flight on the old channel get the send timeout to finish
            closing = asyncio.get_running_loop().create_task(old.close(self.config.timeout))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def shutdown(self) -> None:
        """Drain the queue while the channel is still open, then close it."""
        try:
            await self._helper.shutdown()
        finally:
            if self._closing:
                await asyncio.gather(*self._closing, return_exceptions=True)
            if self._channel is not None:
                await self._channel.close()
                self._channel = None
                self._call = None

    async def _send(self, batch: Batch) -> PartialSuccess | None:
        if self._call is None:
            raise RetryableError("exporter is not started")
        await self._reopen_if_certificates_changed()
        try:
            response = await self._call(batch, timeout=self.config.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc.code(), exc.details(), exc.trailing_metadata()) from None
        partial = response.partial_success
        rejected = getattr(partial, _METHODS[self.signal][3])
        if rejected or partial.error_message:
            return PartialSuccess(rejected, partial.error_message)
        return None
