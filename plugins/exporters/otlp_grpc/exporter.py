"""Sends one signal's batches to an OTLP/gRPC server over a grpc.aio channel, through the exporter helper.

Batches go out as they are: the request message is serialized by grpc, never copied or converted. Failed
calls become RetryableError or PermanentError per the OTLP status table (``helpers.exporter.grpc_error``).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from gateway import (
    USER_AGENT,
    Batch,
    ComponentSettings,
    ExporterChannel,
    ExporterHelper,
    PartialSuccess,
    Signal,
    grpc_error,
)

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
        path, request_type, response_type, _ = _METHODS[self.signal]
        self._channel = ExporterChannel(self.target, self.secure, config, close_grace=config.timeout,
                                        options=[("grpc.primary_user_agent", USER_AGENT)])
        self._call = self._channel.method(path, request_type.SerializeToString, response_type.FromString)
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure)
        setattr(self, f"consume_{self.signal.value}", self._helper.consume)

    async def start(self, host: Any) -> None:
        await self._channel.start(host)
        await self._helper.start(host)

    async def shutdown(self) -> None:
        """Drain the queue while the channel is still open, then close it."""
        try:
            await self._helper.shutdown()
        finally:
            await self._channel.close()

    async def _send(self, batch: Batch) -> PartialSuccess | None:
        try:
            response = await self._call(batch, timeout=self.config.timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc.code(), exc.details(), exc.trailing_metadata()) from None
        partial = response.partial_success
        rejected = getattr(partial, _METHODS[self.signal][3])
        if rejected or partial.error_message:
            return PartialSuccess(rejected, partial.error_message)
        return None
