"""``protocol: grpc``: spans to Jaeger's api_v2 ``CollectorService/PostSpans``, through the exporter helper.

Each batch is translated (``translate.py``) into one PostSpansRequest per process, already serialized, so the
call is made with an identity serializer rather than through the generated stub, whose serializer wants a
message. ``PartSender`` makes a retry resend only the requests that failed. Failed calls follow the same
status table as OTLP (``helpers.exporter.grpc_error``): Jaeger's collector answers with standard gRPC codes.
"""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import (
    USER_AGENT,
    ComponentSettings,
    ExporterChannel,
    ExporterHelper,
    Host,
    PartialSuccess,
    PartSender,
    grpc_error,
    offloaded,
    parse_grpc_endpoint,
)
from gateway.protos.jaeger.api_v2 import collector_pb2

from .config import Config
from .translate import Translator

_SERVICE = collector_pb2.DESCRIPTOR.services_by_name["CollectorService"]
#: /jaeger.api_v2.CollectorService/PostSpans
POST_SPANS = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['PostSpans'].name}"


class JaegerGrpcExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.target, self.secure = parse_grpc_endpoint(config.target, config.tls.insecure)
        # Jaeger's default receive limit is 4 MiB; the translator keeps requests under it.
        self._channel = ExporterChannel(self.target, self.secure, config, close_grace=config.timeout,
                                        options=[("grpc.primary_user_agent", USER_AGENT)])
        self._call = self._channel.method(POST_SPANS, None, collector_pb2.PostSpansResponse.FromString)
        self.translator = Translator()
        queue = config.sending_queue
        self._parts = PartSender(offloaded(self.translator.translate), self._post_spans,
                                 capacity=2 * queue.num_consumers + 16 if queue.enabled else 64)
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure)

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
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

    async def _send(self, batch: Any) -> PartialSuccess | None:
        return await self._parts.send(batch)

    async def _post_spans(self, request: bytes) -> None:
        try:
            await self._call(request, timeout=self.config.timeout)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc.code(), exc.details(), exc.trailing_metadata()) from None
