"""``protocol: grpc``: spans to Jaeger's api_v2 ``CollectorService/PostSpans``, through the exporter helper.

Each batch is translated (``translate.py``) into one PostSpansRequest per process, already serialized, so the
call is made with an identity serializer rather than through the generated stub, whose serializer wants a
message. ``PartSender`` makes a retry resend only the requests that failed. Failed calls follow the same
status table as OTLP (``helpers.exporter.grpc_error``): Jaeger's collector answers with standard gRPC codes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from gateway.component import ComponentSettings
from gateway.configblocks import ReloadingClientTLS
from gateway.errors import RetryableError
from gateway.helpers.exporter import USER_AGENT, ExporterHelper, PartialSuccess, grpc_error
from gateway.protos.jaeger.api_v2 import collector_pb2
from plugins.exporters.otlp_grpc.config import parse_endpoint

from .config import Config
from .parts import PartSender, offloaded
from .translate import Translator

_SERVICE = collector_pb2.DESCRIPTOR.services_by_name["CollectorService"]
#: /jaeger.api_v2.CollectorService/PostSpans
POST_SPANS = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['PostSpans'].name}"


class JaegerGrpcExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.target, self.secure = parse_endpoint(config.target, config.tls.insecure)
        self._metadata = tuple(
            (key.lower(), value.encode() if key.lower().endswith("-bin") else value)
            for key, value in config.headers.items())
        self._channel: grpc.aio.Channel | None = None
        self._call: Any = None
        self._tls: ReloadingClientTLS | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self.translator = Translator()
        queue = config.sending_queue
        self._parts = PartSender(offloaded(self.translator.translate), self._post_spans,
                                 capacity=2 * queue.num_consumers + 16 if queue.enabled else 64)
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure)
        self.consume_traces = self._helper.consume

    def _open_channel(self) -> None:
        """A channel with the current credentials (grpc channels cannot swap credentials in place)."""
        tls = self.config.tls
        # Jaeger's default receive limit is 4 MiB; the translator keeps requests under it.
        options: list[tuple[str, Any]] = [("grpc.primary_user_agent", USER_AGENT)]
        if self.secure and tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", tls.server_name_override))
        gzip = self.config.compression == "gzip"
        compression = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
        if self.secure:
            self._channel = grpc.aio.secure_channel(self.target, tls.grpc_credentials(), options, compression)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options, compression)
        self._call = self._channel.unary_unary(POST_SPANS, request_serializer=None,
                                               response_deserializer=collector_pb2.PostSpansResponse.FromString)

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

    async def _send(self, batch: Any) -> PartialSuccess | None:
        if self._call is None:
            raise RetryableError("exporter is not started")
        await self._reopen_if_certificates_changed()
        return await self._parts.send(batch)

    async def _post_spans(self, request: bytes) -> None:
        if self._call is None:
            raise RetryableError("exporter is not started")
        try:
            await self._call(request, timeout=self.config.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise grpc_error(exc.code(), exc.details(), exc.trailing_metadata()) from None
