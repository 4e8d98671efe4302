"""Sends one signal's batches to an OTLP/HTTP server with aiohttp, through the exporter helper.

One ClientSession (one connection pool) per exporter, opened in start and closed after the queue has drained.
Answers follow docs/protocols.md §1.2: 2xx is success (maybe partial), 429/502/503/504 are retried honouring
``Retry-After``, every other status is permanent and carries the server's ``google.rpc.Status`` message.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from yarl import URL

from gateway import (
    USER_AGENT,
    Batch,
    BatchConsumer,
    ComponentSettings,
    ConfigError,
    ExporterHelper,
    Host,
    HTTPClient,
    PartialSuccess,
    PermanentError,
    RetryableError,
    Signal,
    WireBatch,
    http_error,
    otlpjson,
)

from .config import Config

# signal → (response type, partial-success counter field)
_RESPONSES: dict[Signal, tuple[type[Message], str]] = {
    Signal.TRACES: (trace_pb.ExportTraceServiceResponse, "rejected_spans"),
    Signal.METRICS: (metrics_pb.ExportMetricsServiceResponse, "rejected_data_points"),
    Signal.LOGS: (logs_pb.ExportLogsServiceResponse, "rejected_log_records"),
}
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


class OtlpHttpExporter(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.signal = settings.signal or Signal.TRACES
        self.url = config.url(self.signal)
        if not self.url:
            raise ConfigError(f"exporters::{settings.id}::{self.signal.value}_endpoint: required to export "
                              f"{self.signal.value} when endpoint is not set")
        self._json = config.encoding == "json"
        self._headers = {"Content-Type": _JSON if self._json else _PROTOBUF}
        self._client: HTTPClient | None = None
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure,
                                      wire=not self._json)

    async def consume_batch(self, batch: Batch) -> None:
        await self._helper.consume(batch)

    async def consume_wire(self, batch: WireBatch) -> None:
        await self._helper.consume(batch)

    async def start(self, host: Host) -> None:
        self._client = HTTPClient(self.config, host, https=URL(self.url).scheme == "https", user_agent=USER_AGENT)
        await self._helper.start(host)

    async def shutdown(self) -> None:
        """Drain the queue while the session is still open, then close it."""
        try:
            await self._helper.shutdown()
        finally:
            if self._client is not None:
                await self._client.close()
                self._client = None

    async def _send(self, batch: Batch | WireBatch) -> PartialSuccess | None:
        if self._client is None:
            raise RetryableError("exporter is not started")
        if isinstance(batch, WireBatch):
            body = otlpjson.encode(batch.message()) if self._json else batch.data  # protobuf: sent as received
        else:
            body = otlpjson.encode(batch) if self._json else batch.SerializeToString()
        async with await self._client.post(self.url, body, self._headers) as response:
            payload = await response.read()
            if 200 <= response.status < 300:
                return self._partial_success(payload, response.content_type)
            raise http_error(response.status, _status_message(payload, response.content_type),
                             response.headers.get("Retry-After"))

    def _partial_success(self, payload: bytes, content_type: str) -> PartialSuccess | None:
        if not payload:
            return None
        response_type, field = _RESPONSES[self.signal]
        try:
            if content_type == _JSON:
                response: Any = otlpjson.decode(payload, response_type)
            else:
                response = response_type.FromString(payload)
        except (PermanentError, DecodeError):
            return None  # the server said 2xx: an unreadable body does not make the data less delivered
        partial = response.partial_success
        rejected = getattr(partial, field)
        if rejected or partial.error_message:
            return PartialSuccess(rejected, partial.error_message)
        return None


def _status_message(payload: bytes, content_type: str) -> str:
    """The ``google.rpc.Status`` message of an error body, or the start of the body when it is not one."""
    if not payload:
        return ""
    if content_type == _PROTOBUF:
        try:
            message = status_pb2.Status.FromString(payload).message
        except DecodeError:
            message = ""
        if message:
            return message
    elif content_type == _JSON:
        try:
            document = json.loads(payload)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            return document["message"]
    # A proxy's HTML or plain-text error page: keep it short and on one line.
    return " ".join(payload[:256].decode("utf-8", "replace").split())
