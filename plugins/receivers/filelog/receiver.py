"""The ``filelog`` receiver: polls files, cuts them into entries, runs the operators, hands batches of log records
on, and checkpoints offsets only after the next stage took them (at-least-once).

Each poll: the tracker pairs the files found with known readers by fingerprint; every reader reads from its offset
in blocks; entries go into one buffer shared by all files, sent when full and at the end of the poll. A failed
hand-over rewinds every reader to its last checkpointed offset, so the data is read again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from pathlib import Path
from typing import Any

from gateway import ComponentSettings, Host, LogsConsumer, Signal, SkipBatchError, Storage, attached

from .checkpoint import Checkpoint
from .config import Config
from .emit import RecordBuffer, encode_record_attributes
from .jsoncolumns import add_json_batch
from .jsonlane import json_lane
from .metrics import filelog_metrics
from .operators.base import ErrorSink
from .operators.entry import Entry
from .operators.pipeline import build_pipeline
from .splitter import Splitter
from .tracker import FileReader, Tracker

__all__ = ["FilelogReceiver"]

#: Bytes read per system call.
_BLOCK = 256 * 1024
#: Most bytes read from one file in one poll, so a file written faster than it is read cannot starve the others.
_MAX_BYTES_PER_POLL = 16 * 1024 * 1024
#: A batch is handed on once it holds this many records or bytes.
_BATCH_RECORDS = 8192
_BATCH_BYTES = 1024 * 1024
#: Partial container lines whose last part has not come are passed on after this long.
_HELD_FLUSH_S = 5.0


class _DeliveryFailed(Exception):
    pass


class FilelogReceiver:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: LogsConsumer) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self._consume = next_consumer.consume_logs
        self.accepted, self.refused = settings.telemetry.receiver_counters("file", Signal.LOGS)
        metrics = filelog_metrics(settings.telemetry.registry)
        receiver = str(settings.id)
        self._problems = {reason: metrics.problems.labels(receiver, reason) for reason in
                          ("open", "read", "truncated", "invalid_encoding", "entry_cut", "delivery", "delete")}
        self._files_gauge = metrics.files.labels(receiver)
        self._bytes_read = metrics.bytes_read.labels(receiver)
        operator_errors = metrics.operator_errors
        # otelgw_component_dropped_items_total: entries a filter operator matched, or failed with on_error: drop
        dropped = {reason: settings.telemetry.dropped(reason, Signal.LOGS) for reason in ("filtered", "operator_error")}
        self.pipeline = build_pipeline(
            config.operators, ErrorSink(self.logger, lambda op, n: operator_errors.labels(receiver, op).inc(n),
                                        lambda reason, n: dropped[reason].inc(n)))
        self.codec = config.codec
        self.max_log_size = config.max_log_bytes
        multiline = config.multiline
        self.splitter = Splitter(self.codec, self.max_log_size,
                                 multiline.line_start_pattern if multiline else "",
                                 multiline.line_end_pattern if multiline else "",
                                 multiline.omit_pattern if multiline else False,
                                 config.preserve_leading_whitespaces, config.preserve_trailing_whitespaces)
        self.splitter.track_offsets = bool(self.pipeline.stateful)
        self.tracker = Tracker(config.include, config.exclude, config.fingerprint_bytes,
                               config.max_concurrent_files, config.exclude_older_than)
        self.buffer = RecordBuffer()
        self.checkpoint: Checkpoint | None = None
        self._resource: dict[str, Any] | None = dict(config.resource) or None
        self._attributes: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._touched: set[FileReader] = set()
        self._lost: list[FileReader] = []
        self._logged: set[str] = set()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fast = not config.operators and self.codec in ("utf-8", "ascii")
        self._json_lane = json_lane(self.pipeline) if self.codec in ("utf-8", "ascii") else None
        #: Polls completed; tests and benchmarks wait on it.
        self.polls = 0

    # ---- lifecycle -------------------------------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        if self.config.storage:
            extension = host.extension(self.config.storage, Storage, "storage")
            directory, fsync = extension.queue_directory(f"receiver_filelog_{self.settings.id}")
            self.checkpoint = Checkpoint(Path(directory), fsync)
            restored = self.checkpoint.load()
            if restored:
                self.tracker.restore(restored)
                self.logger.info("resuming files from checkpointed offsets",
                                 extra={"files": len(restored), "directory": str(directory)})
        self._task = asyncio.create_task(self._run(), name=f"filelog {self.settings.id}")
        self.logger.info("filelog receiver started", extra={"include": ", ".join(self.config.include),
                                                            "start_at": self.config.start_at})

    async def shutdown(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10.0)
            except TimeoutError:
                self._task.cancel()
            except Exception:
                pass
            self._task = None
        for reader in self.tracker.all_readers():
            reader.close()

    async def _run(self) -> None:
        interval = self.config.poll_interval
        while not self._stop.is_set():
            try:
                await self._poll()
            except _DeliveryFailed:
                pass  # rewound; the next poll reads the same data again
            except Exception as exc:
                self._problem("read", "", exc)
            self.polls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    # ---- one poll --------------------------------------------------------------------------------------------

    async def _poll(self) -> None:
        found, lost = self.tracker.poll(self.config.start_at == "end", self._problem)
        self._files_gauge.set(len(found))
        for reader in found:
            await self._read(reader, final=False)
            if self._stop.is_set():
                break
        # files renamed away or deleted: read to their end, and closed only once that was delivered (a refusal
        # rewinds them, and they are read again at the next poll through the descriptor still open)
        self._lost.extend(r for r in lost if r not in self._lost)
        for reader in self._lost:
            await self._read(reader, final=True)
        held = self.pipeline.flush(_HELD_FLUSH_S) if self.pipeline.stateful else []
        if held:
            self.buffer.add_entries(held)
            # their files may checkpoint past them once they are delivered
            self._touched.update(e.source for e in held if isinstance(e.source, FileReader))
        await self._send()
        for reader in self._lost:
            reader.close()
        self._lost.clear()
        if self.config.delete_after_read:
            self._delete_finished(found)

    async def _read(self, reader: FileReader, final: bool) -> None:
        fd = reader.fd
        if fd is None:
            return
        attributes, encoded = self._file_attributes(reader.path)
        pos = start = reader.offset
        carry = b""
        now = time.monotonic()
        if final:
            try:
                if os.fstat(fd).st_size < pos:
                    self._problem("truncated", reader.path, None)
                    return
            except OSError:
                return
        while True:
            try:
                data = os.pread(fd, _BLOCK, pos + len(carry))
            except OSError as exc:
                self._problem("read", reader.path, exc)
                break
            self._bytes_read.inc(len(data))
            eof = len(data) < _BLOCK
            buf = carry + data if carry else data
            if not buf:
                reader.pending = 0
                break
            tokens, consumed, offsets = self.splitter.split(buf, flush=False)
            tail = len(buf) - consumed
            if eof and tail:
                if final or (tail == reader.pending and now - reader.pending_since >= self.config.force_flush_period):
                    more, extra, more_offsets = self.splitter.split(buf[consumed:], flush=True)
                    tokens.extend(more)
                    offsets.extend(consumed + o for o in more_offsets)
                    consumed += extra
                    reader.pending = 0
                elif tail != reader.pending:
                    reader.pending, reader.pending_since = tail, now
            elif eof:
                reader.pending = 0
            if consumed and len(buf) >= self.max_log_size and tokens and len(tokens[-1]) >= self.max_log_size:
                self._problem("entry_cut", reader.path, None)
            if tokens:
                self._add(reader, tokens, offsets if self.splitter.track_offsets else [], pos, attributes, encoded)
            pos += consumed
            carry = buf[consumed:]
            reader.offset = pos
            self._touched.add(reader)
            if self.buffer.count >= _BATCH_RECORDS or self.buffer.size >= _BATCH_BYTES:
                await self._send()
            if eof or (not final and pos - start >= _MAX_BYTES_PER_POLL):
                break

    def _add(self, reader: FileReader, tokens: list[bytes], offsets: list[int], base: int,
             attributes: dict[str, Any], encoded: bytes) -> None:
        observed = time.time_ns()
        if self._fast:
            try:
                b"\n".join(tokens).decode(self.codec)
            except UnicodeDecodeError:
                self._problem("invalid_encoding", reader.path, None)
                tokens = [t.decode(self.codec, "replace").encode() for t in tokens]
            self.buffer.add_lines(tokens, encoded, observed, self._resource)
            return
        resource = self._resource
        if self._json_lane is not None:
            def general(body: str) -> list[Entry]:
                entry = Entry(body, dict(attributes), observed, reader, base)
                entry.resource = resource
                return self.pipeline.run([entry])

            lines: list[bytes] | list[str] = tokens
            try:
                b"\n".join(tokens).decode(self.codec)  # valid: the lines go on as the bytes they are
            except UnicodeDecodeError:
                self._problem("invalid_encoding", reader.path, None)
                lines = [t.decode(self.codec, "replace") for t in tokens]
            add_json_batch(self.buffer, lines, self._json_lane, encoded, frozenset(attributes), observed, resource,
                           general)
            return
        bodies: list[Any]
        if not self.codec:
            bodies = list(tokens)  # nop: bytes bodies
        else:
            try:
                bodies = b"\n".join(tokens).decode(self.codec).split("\n") if self.codec in ("utf-8", "ascii") \
                    else [t.decode(self.codec) for t in tokens]
                if len(bodies) != len(tokens):  # a multiline entry holds newlines itself
                    bodies = [t.decode(self.codec) for t in tokens]
            except UnicodeDecodeError:
                self._problem("invalid_encoding", reader.path, None)
                bodies = [t.decode(self.codec, "replace") for t in tokens]
            if self.codec.startswith("utf-16"):
                bodies = [b for b in (self._trim(b) for b in bodies) if b]
        entries = []
        for body, offset in zip(bodies, offsets or itertools.repeat(0), strict=False):
            entry = Entry(body, dict(attributes), observed, reader, base + offset)
            entry.resource = resource
            entries.append(entry)
        self.buffer.add_entries(self.pipeline.run(entries))

    def _trim(self, text: str) -> str:
        if not self.config.preserve_leading_whitespaces:
            text = text.lstrip()
        if not self.config.preserve_trailing_whitespaces:
            text = text.rstrip()
        return text

    def _file_attributes(self, path: str) -> tuple[dict[str, Any], bytes]:
        cached = self._attributes.get(path)
        if cached is None:
            config = self.config
            attributes: dict[str, Any] = {}
            if config.include_file_name:
                attributes["log.file.name"] = os.path.basename(path)
            if config.include_file_path:
                attributes["log.file.path"] = path
            if config.include_file_name_resolved or config.include_file_path_resolved:
                resolved = os.path.realpath(path)
                if config.include_file_name_resolved:
                    attributes["log.file.name_resolved"] = os.path.basename(resolved)
                if config.include_file_path_resolved:
                    attributes["log.file.path_resolved"] = resolved
            attributes.update(config.attributes)
            if len(self._attributes) >= 10_000:
                self._attributes.clear()
            cached = self._attributes[path] = (attributes, encode_record_attributes(attributes))
        return cached

    async def _send(self) -> None:
        """Hand the buffer on; on success checkpoint every reader it covers, on failure rewind them all."""
        count = self.buffer.count
        if count:
            request, wire = self.buffer.request()
            self.buffer.clear()
            try:
                with attached(request, wire):  # byte-scanning processors (redaction) need not re-serialize
                    await self._consume(request)
            except SkipBatchError:
                pass
            except Exception as exc:
                self.refused.inc(count)
                self._problem("delivery", "", exc)
                self._rewind()
                raise _DeliveryFailed from None
            else:
                self.accepted.inc(count)
        held = self.pipeline.held_offset if self.pipeline.stateful else None
        for reader in self._touched:
            offset = reader.offset
            if held is not None:
                first_held = held(reader)
                if first_held is not None and first_held < offset:
                    offset = first_held
            reader.committed = offset
        self._touched.clear()
        if self.checkpoint is not None:
            try:
                self.checkpoint.save(self.tracker.all_readers())
            except OSError as exc:
                self._problem("checkpoint", "", exc)

    def _rewind(self) -> None:
        for op in self.pipeline.stateful:
            op.flush(None)  # dropped: they are re-read from the rewound offsets
        for reader in self.tracker.all_readers():
            reader.offset = reader.committed
            reader.pending = 0
        self._touched.clear()

    def _delete_finished(self, readers: list[FileReader]) -> None:
        for reader in readers:
            if reader.fd is None or reader.pending or reader.committed != reader.offset:
                continue
            try:
                if os.fstat(reader.fd).st_size != reader.committed:
                    continue
                os.unlink(reader.path)
            except OSError as exc:
                self._problem("delete", reader.path, exc)

    def _problem(self, reason: str, path: str, exc: BaseException | None) -> None:
        counter = self._problems.get(reason)
        if counter is None:
            counter = self._problems[reason] = filelog_metrics(self.settings.telemetry.registry).problems.labels(
                str(self.settings.id), reason)
        counter.inc()
        if reason in self._logged:
            return
        self._logged.add(reason)
        messages = {
            "open": "cannot open a file", "read": "cannot read a file", "delete": "cannot delete a file",
            "truncated": "a file was truncated while being read; reading it again from its start",
            "invalid_encoding": f"invalid {self.config.encoding} in a file; bad bytes replaced by U+FFFD",
            "entry_cut": f"an entry longer than max_log_size ({self.max_log_size} bytes) was cut into pieces",
            "delivery": "the next stage refused logs; offsets rewound, the data is read again at the next poll",
            "checkpoint": "cannot write the offsets checkpoint",
        }
        self.logger.warning("%s (counted in otelgw_receiver_filelog_problems{reason=%r}; logged once)",
                            messages.get(reason, reason), reason,
                            extra={"path": path, "error": str(exc) if exc else ""})
