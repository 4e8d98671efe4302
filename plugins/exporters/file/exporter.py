"""Exporter ``file``: writes every request to a file as OTLP/JSON lines or length-prefixed binary protobuf.

The host creates one exporter per signal, but a file can only have one writer: the per-signal exporters of one
component share a ``FileWriter``. It is opened by the first ``start`` and closed by the *last* ``shutdown``:
upstream stages of the other signals may still be draining into it when the first of them is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from typing import Any

from gateway import Batch, BatchConsumer, ComponentSettings, Host, RetryableError, Signal, count_items, otlpjson

from .config import Config
from .writer import FileWriter

__all__ = ["FileExporter"]


class _SharedWriter:
    """A ``FileWriter`` plus its periodic flush, reference-counted across the per-signal exporters."""

    def __init__(self, key: tuple[str, str], config: Config, logger: Any) -> None:
        self.key = key
        self.writer = FileWriter(config)
        self.config = config
        self.logger = logger
        self.users = 0
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.writer.is_open:
            return
        self.writer.open()
        if self.config.flush_interval > 0:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval)
            try:
                self.writer.flush()
            except OSError as exc:
                self.logger.warning("flushing %s failed: %s", self.writer.path, exc)

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        _SHARED.pop(self.key, None)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self.writer.close()


# One writer per (component id, file). Entries leave when their last exporter shuts down.
_SHARED: dict[tuple[str, str], _SharedWriter] = {}


def _acquire(settings: ComponentSettings, config: Config) -> _SharedWriter:
    key = (str(settings.id), os.path.abspath(config.path))
    shared = _SHARED.get(key)
    if shared is None:
        shared = _SHARED[key] = _SharedWriter(key, config, settings.telemetry.logger)
    shared.users += 1
    return shared


def _encode_json(batch: Batch) -> bytes:
    return otlpjson.encode(batch) + b"\n"


def _encode_proto(batch: Batch) -> bytes:
    body = batch.SerializeToString()
    return struct.pack(">I", len(body)) + body


class FileExporter(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        if settings.signal is None:
            raise ValueError("the file exporter is created per signal; settings.signal is required")
        self.settings = settings
        self.config = config
        self.signal: Signal = settings.signal
        self._encode = _encode_json if config.format == "json" else _encode_proto
        item = self.signal.item_name
        root, name = settings.telemetry.root, str(settings.id)
        self._sent = root.exporter_sent[item].labels(name)
        self._failed = root.exporter_send_failed[item].labels(name)
        self._shared: _SharedWriter | None = None

    @property
    def path(self) -> str:
        return self.config.path

    async def start(self, host: Host) -> None:
        if self._shared is None:
            # Acquired here, not at create: a component that is created but never started holds nothing.
            self._shared = _acquire(self.settings, self.config)
            self._shared.start()

    async def shutdown(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.release()

    async def consume_batch(self, batch: Batch) -> None:
        items = count_items(self.signal, batch)
        if self._shared is None or not self._shared.writer.is_open:
            self._failed.inc(items)
            raise RetryableError(f"file exporter {self.settings.id} is not running")
        record = self._encode(batch)
        try:
            self._shared.writer.write(record)
        except OSError as exc:  # disk full, permissions changed under us: transient from the sender's view
            self._failed.inc(items)
            raise RetryableError(f"writing {self.config.path} failed: {exc}") from exc
        self._sent.inc(items)
