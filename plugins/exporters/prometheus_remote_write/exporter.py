"""Exporter ``prometheus_remote_write``: OTLP metrics to a remote-write 1.0 receiver (Prometheus, Mimir, ...).

Batches go through the exporter helper with ONE queue worker, so batches are written in arrival order; within a
batch, series are sharded across ``num_consumers`` concurrent requests and each shard's requests go one after
the other. Together with the encoder's per-series time filter, no series ever reaches the receiver out of order.
A batch is translated and encoded once: a retry re-sends only the shards not yet accepted, so delta-to-cumulative
state is never applied twice. 5xx and 429 are retried (within ``retry_on_failure``'s cap), other 4xx never.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from yarl import URL

from gateway import (
    USER_AGENT,
    Batch,
    ComponentSettings,
    ConsumeError,
    ExporterHelper,
    Host,
    HTTPClient,
    PermanentError,
    QueueConfig,
    RetryableError,
    Signal,
    parse_retry_after,
    permanent_http_error,
)
from gateway.prometheus import CumulativeState, TranslateOptions, Translator

from .config import Config
from .encode import Encoder, Shard

__all__ = ["RemoteWriteExporter", "remote_write_error"]

#: Batches whose encoded requests are kept for retries; with one queue worker only the current one is live.
_PREPARED_LIMIT = 16
#: ``timeout`` bounds each HTTP request; one attempt at a batch (several requests per shard) gets this many.
_REQUESTS_PER_ATTEMPT = 10


def remote_write_error(status: int, message: str = "", retry_after: str | None = None) -> ConsumeError:
    """Remote write 1.0: every 5xx MUST be retried, 429 MAY be; any other status is not retried."""
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status >= 500 or status == 429:
        return RetryableError(text, parse_retry_after(retry_after))
    return permanent_http_error(status, text)


@dataclass
class _Prepared:
    batch: Batch
    shards: list[Shard]


class RemoteWriteExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        options = TranslateOptions(
            namespace=config.namespace, add_metric_suffixes=config.add_metric_suffixes,
            resource_to_telemetry_conversion=config.resource_to_telemetry_conversion.enabled,
            target_info=config.target_info.enabled, extra_labels=tuple(sorted(config.external_labels.items())))
        self.translator = Translator(options, CumulativeState())
        self.encoder = Encoder(shards=config.remote_write_queue.num_consumers,
                               max_request_bytes=config.max_batch_size_bytes, send_metadata=config.send_metadata)
        self._headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                         "X-Prometheus-Remote-Write-Version": "0.1.0"}
        self._client: HTTPClient | None = None
        self._prepared: dict[int, _Prepared] = {}
        self._send_lock = asyncio.Lock()
        #: Points whose samples were not newer than the last sent for their series (see encode.py).
        self._out_of_order = settings.telemetry.dropped("out_of_order", Signal.METRICS)
        queue = config.remote_write_queue
        # One worker: batches must reach the receiver in order; concurrency comes from shards inside a batch.
        self._helper = ExporterHelper(
            settings, self._send, timeout=config.timeout * 4,
            queue=QueueConfig(enabled=queue.enabled, num_consumers=1, queue_size=queue.queue_size),
            retry=config.retry_on_failure)

    async def consume_metrics(self, batch: ExportMetricsServiceRequest) -> None:
        await self._helper.consume(batch)

    async def start(self, host: Host) -> None:
        self._client = HTTPClient(self.config, host, https=URL(self.config.endpoint).scheme == "https",
                                  user_agent=USER_AGENT)
        await self._helper.start(host)

    async def shutdown(self) -> None:
        try:
            await self._helper.shutdown()
        finally:
            if self._client is not None:
                await self._client.close()
                self._client = None

    def _prepare(self, batch: Batch) -> _Prepared:
        prepared = self._prepared.get(id(batch))
        if prepared is not None and prepared.batch is batch:
            return prepared
        assert isinstance(batch, ExportMetricsServiceRequest)
        try:
            dropped_before = self.encoder.dropped_points_out_of_order
            shards = self.encoder.encode(self.translator.translate(batch))
            self._out_of_order.inc(self.encoder.dropped_points_out_of_order - dropped_before)
        except Exception as exc:  # a bug or data we cannot translate: retrying would not help
            self.logger.exception("translating metrics failed")
            raise PermanentError(f"cannot translate the batch: {exc}") from exc
        prepared = _Prepared(batch, shards)
        self._prepared[id(batch)] = prepared  # holds the batch, so its id cannot be reused meanwhile
        while len(self._prepared) > _PREPARED_LIMIT:
            del self._prepared[next(iter(self._prepared))]
        return prepared

    async def _send(self, batch: Batch) -> None:
        async with self._send_lock:  # with the queue disabled, concurrent callers still write one at a time
            prepared = self._prepare(batch)
            results = await asyncio.gather(*(self._send_shard(shard) for shard in prepared.shards),
                                           return_exceptions=True)
            prepared.shards = [shard for shard in prepared.shards if shard.bodies]
            errors = [r for r in results if isinstance(r, BaseException)]
            if not errors:
                self._prepared.pop(id(batch), None)
                return
            permanent = [e for e in errors if isinstance(e, PermanentError)]
            if permanent or not prepared.shards:
                self._prepared.pop(id(batch), None)
            raise permanent[0] if permanent else errors[0]

    async def _send_shard(self, shard: Shard) -> None:
        """Send the shard's requests in order; each accepted one is removed, so a retry resumes where it failed."""
        while shard.bodies:
            await self._post(shard.bodies[0])
            shard.bodies.pop(0)

    async def _post(self, body: bytes) -> None:
        if self._client is None:
            raise RetryableError("exporter is not started")
        async with await self._client.post(self.config.endpoint, body, self._headers) as response:
            payload = await response.read()
            if 200 <= response.status < 300:
                return
            message = " ".join(payload[:256].decode("utf-8", "replace").split())
            error = remote_write_error(response.status, message, response.headers.get("Retry-After"))
            if isinstance(error, PermanentError):
                # The receiver rejected this request for good; the other requests of the batch may still land.
                self.logger.error("remote write rejected a request; dropping it", extra={"error": str(error)})
            raise error
