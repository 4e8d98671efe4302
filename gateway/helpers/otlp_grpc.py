"""An OTLP/gRPC client: the ``otlp_grpc`` exporter, and the sender behind ``jaeger`` and ``load_balancing``.

``OtlpGrpcExporter`` sends one signal's batches to an OTLP/gRPC server over a grpc.aio channel, through the
exporter helper. Batches go out as they are: the request message is serialized by grpc, never copied or
converted; a batch that came as wire bytes (``gateway.wirebytes.WireBatch``) goes out as those bytes. Failed
calls become RetryableError or PermanentError per the OTLP status table (``helpers.exporter.grpc_error``).
``OtlpGrpcConfig`` is its config block, as the Collector's ``otlp`` exporter spells it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb

from gateway.component import Batch, BatchConsumer, ComponentSettings, Signal
from gateway.configgrpc import GRPCClientConfig
from gateway.configtypes import Duration
from gateway.errors import ConfigError
from gateway.helpers.exporter import USER_AGENT, ExporterHelper, PartialSuccess, QueueConfig, RetryConfig, grpc_error
from gateway.helpers.grpc_channel import ExporterChannel
from gateway.netaddr import split_host_port
from gateway.wirebytes import WireBatch

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["OtlpGrpcConfig", "OtlpGrpcExporter", "parse_grpc_endpoint"]

# Targets grpc resolves itself; passed through untouched.
_GRPC_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:")


def parse_grpc_endpoint(endpoint: str, insecure: bool) -> tuple[str, bool]:
    """The grpc target and whether to use TLS. ``http://`` / ``https://`` prefixes decide TLS when present."""
    text = endpoint.strip()
    secure = not insecure
    if text.startswith(_GRPC_SCHEMES):
        return text, secure
    for scheme, scheme_secure in (("https://", True), ("http://", False)):
        if text.startswith(scheme):
            text, secure = text[len(scheme):].rstrip("/"), scheme_secure
            break
    if text.startswith(":"):
        raise ValueError(f"{endpoint!r} has no host; expected host:port, e.g. collector:4317")
    split_host_port(text)
    return text, secure


@dataclass(frozen=True)
class OtlpGrpcConfig(GRPCClientConfig):
    """The shared gRPC client block (``gateway.configgrpc``: endpoint, tls, headers, compression, keepalive,
    balancer_name, wait_for_ready, auth...) with the exporter helper's timeout, queue and retry."""

    #: host:port of the OTLP/gRPC server, e.g. collector:4317 (required). An http:// or https:// prefix
    #: chooses plaintext or TLS and overrides tls::insecure; dns:///, unix: targets are passed to grpc as is.
    endpoint: str = ""
    #: Deadline of one send attempt (default 5s).
    timeout: Duration = 5.0
    #: In-memory sending queue (default on: 10 consumers, 1000 requests).
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    #: Retry with exponential backoff (default on: 5s initial, 30s max interval, give up after 300s).
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        errors = []
        secure = False
        if not self.endpoint.strip():
            errors.append("endpoint: required, e.g. collector:4317")
        else:
            try:
                secure = parse_grpc_endpoint(self.endpoint, self.tls.insecure)[1]
            except ValueError as exc:
                errors.append(f"endpoint: {exc}")
        if secure and self.tls.insecure_skip_verify:
            errors.append("tls::insecure_skip_verify: not supported by the gRPC client; set tls::ca_file to "
                          "the server's CA or self-signed certificate instead")
        errors.extend(self.client_errors())
        if self.timeout <= 0:
            errors.append("timeout: must be > 0")
        if errors:
            raise ConfigError(errors)


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


class OtlpGrpcExporter(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: OtlpGrpcConfig) -> None:
        self.settings = settings
        self.config = config
        self.signal = settings.signal or Signal.TRACES
        self.target, self.secure = parse_grpc_endpoint(config.endpoint, config.tls.insecure)
        path, _request_type, response_type, _ = _METHODS[self.signal]
        self._channel = ExporterChannel(self.target, self.secure, config, close_grace=config.timeout,
                                        options=[("grpc.primary_user_agent", USER_AGENT)])
        self._call = self._channel.method(path, _serialize, response_type.FromString)
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure, wire=True)

    async def consume_batch(self, batch: Batch) -> None:
        await self._helper.consume(batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        await self._helper.consume(batch)

    async def start(self, host: Host) -> None:
        await self._channel.start(host)
        await self._helper.start(host)

    async def shutdown(self) -> None:
        """Drain the queue while the channel is still open, then close it."""
        try:
            await self._helper.shutdown()
        finally:
            await self._channel.close()

    async def _send(self, batch: Batch | WireBatch) -> PartialSuccess | None:
        try:
            response = await self._call(batch, timeout=self.config.timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc.code(), exc.details(), exc.trailing_metadata()) from None
        partial = response.partial_success
        rejected = getattr(partial, _METHODS[self.signal][3])
        if rejected or partial.error_message:
            return PartialSuccess(rejected, partial.error_message)
        return None


def _serialize(batch: Batch | WireBatch) -> bytes:
    """grpc's request serializer: a batch of wire bytes is already serialized."""
    return batch.data if isinstance(batch, WireBatch) else batch.SerializeToString()
