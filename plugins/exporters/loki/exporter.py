"""Pushes log records to Loki's ``/loki/api/v1/push`` with aiohttp, through the exporter helper.

One push per tenant (``X-Scope-OrgID``) per batch; ``PartSender`` makes a retry resend only the pushes that
failed. Answers follow docs/protocols.md §2.5: 204 (or 200) is success; 429 and every 5xx are retried, waiting at
least ``Retry-After``; every other status (400 for bad labels or old entries, 401 without a tenant, 413 too
large, Loki's 260 while ingestion is blocked) drops the push, counted and logged with Loki's message.
"""

from __future__ import annotations

import gzip
import json

import cramjam
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from yarl import URL

from gateway import (
    USER_AGENT,
    Batch,
    ComponentSettings,
    ExporterHelper,
    Host,
    HTTPClient,
    Part,
    PartialSuccess,
    PartSender,
    RetryableError,
    Split,
    field,
    offloaded,
    parse_retry_after,
    permanent_http_error,
    timestamp,
    varint,
)

from .config import Config
from .translate import Streams, Translator

__all__ = ["LokiExporter", "encode_json", "encode_protobuf"]

# JSON pushes are about three times the size of protobuf ones: level 1 still shrinks them to ~13%, at a third of
# level 6's CPU (bench/jaeger_loki.py workload), and this runs on the event loop.
_GZIP_LEVEL = 1
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_protobuf(streams: Streams) -> bytes:
    """A logproto.PushRequest (gateway/protos/loki), snappy block compressed (not framed), as Loki requires.

    Written field by field (PushRequest.streams = 1; StreamAdapter.labels = 1, entries = 2; EntryAdapter
    .timestamp = 1, line = 2, structuredMetadata = 3; LabelPairAdapter.name = 1, value = 2), which is faster
    than filling the generated messages; the tests decode it with them.
    """
    out: list[bytes] = []
    for text, (_, entries) in streams.items():
        # Pieces are collected in order and each envelope's length is summed, not measured on a concatenation.
        pieces = [field(b"\x0a", text.encode())]
        size = len(pieces[0])
        for timestamp_ns, line, metadata in entries:
            stamp = timestamp(b"\x0a", timestamp_ns)
            encoded = line.encode()
            line_head = b"\x12" + varint(len(encoded))
            pairs = b"".join([_label_pair(name, value) for name, value in metadata]) if metadata else b""
            entry_size = len(stamp) + len(line_head) + len(encoded) + len(pairs)
            entry_head = b"\x12" + varint(entry_size)
            pieces += (entry_head, stamp, line_head, encoded, pairs)
            size += len(entry_head) + entry_size
        out.append(b"\x0a" + varint(size))
        out += pieces
    return bytes(cramjam.snappy.compress_raw(b"".join(out)))


def _label_pair(name: str, value: str) -> bytes:
    """EntryAdapter.structuredMetadata: LabelPairAdapter{name, value}. Everything before the value depends
    only on the name and the value's length (trace and span ids: always 32 and 16), so it is cached."""
    encoded = value.encode()
    key = (name, len(encoded))
    prefix = _PAIR_PREFIXES.get(key)
    if prefix is None:
        inner = field(b"\x0a", name.encode()) + b"\x12" + varint(len(encoded))
        prefix = b"\x1a" + varint(len(inner) + len(encoded)) + inner
        if len(_PAIR_PREFIXES) < 4096:
            _PAIR_PREFIXES[key] = prefix
    return prefix + encoded


_PAIR_PREFIXES: dict[tuple[str, int], bytes] = {}


def encode_json(streams: Streams) -> bytes:
    """``{"streams":[{"stream":{..},"values":[["<ns>","line",{metadata}],..]}]}``, gzip compressed."""
    document = {"streams": [
        {"stream": dict(labels.pairs),
         "values": [[str(timestamp), line, dict(metadata)] if metadata else [str(timestamp), line]
                    for timestamp, line, metadata in entries]}
        for labels, entries in streams.values()]}
    return gzip.compress(_dumps(document).encode(), compresslevel=_GZIP_LEVEL, mtime=0)


class LokiExporter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.translator = Translator(config)
        self._json = config.encoding == "json"
        self._encode = encode_json if self._json else encode_protobuf
        self._headers = {"Content-Type": "application/json" if self._json else "application/x-protobuf"}
        if self._json:
            self._headers["Content-Encoding"] = "gzip"
        self._client: HTTPClient | None = None
        queue = config.sending_queue
        self._parts: PartSender[tuple[str, bytes]] = PartSender(
            offloaded(self._split), self._push, capacity=2 * queue.num_consumers + 16 if queue.enabled else 64)
        self._helper = ExporterHelper(settings, self._send, timeout=config.timeout,
                                      queue=config.sending_queue, retry=config.retry_on_failure)

    async def consume_logs(self, batch: ExportLogsServiceRequest) -> None:
        await self._helper.consume(batch)

    async def start(self, host: Host) -> None:
        self._client = HTTPClient(self.config, host, https=URL(self.config.endpoint).scheme == "https",
                                  user_agent=USER_AGENT)
        await self._helper.start(host)

    async def shutdown(self) -> None:
        """Drain the queue while the session is still open, then close it."""
        try:
            await self._helper.shutdown()
        finally:
            if self._client is not None:
                await self._client.close()
                self._client = None

    def _split(self, batch: Batch) -> Split[tuple[str, bytes]]:
        tenants, rejected, reason = self.translator.translate(batch)  # type: ignore[arg-type]
        parts = [Part((tenant, self._encode(streams)), sum(len(entries) for _, entries in streams.values()))
                 for tenant, streams in tenants.items()]
        return Split(parts, rejected, reason)

    async def _send(self, batch: Batch) -> PartialSuccess | None:
        if self._client is None:
            raise RetryableError("exporter is not started")
        return await self._parts.send(batch)

    async def _push(self, payload: tuple[str, bytes]) -> None:
        if self._client is None:
            raise RetryableError("exporter is not started")
        tenant, body = payload
        headers = {**self._headers, "X-Scope-OrgID": tenant} if tenant else self._headers
        async with await self._client.post(self.config.endpoint, body, headers) as response:
            status = response.status
            if status in (200, 204):
                return
            message = _message(await response.read())
            text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
            if status == 429 or status >= 500:
                raise RetryableError(text, parse_retry_after(response.headers.get("Retry-After")))
            if 200 <= status < 300:
                text += " (Loki answered success without 204: ingestion is blocked for this tenant)"
            raise permanent_http_error(status, text)


def _message(payload: bytes) -> str:
    """Loki answers errors in plain text; keep it on one line and short."""
    return " ".join(payload[:512].decode("utf-8", "replace").split())
