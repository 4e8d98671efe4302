"""The exporter helper's sending queues: in memory, or a write-ahead log on disk (``sending_queue.storage``).

Both hand out ``(token, batch)`` pairs and are told when a batch is finished with ``done(token)``; a batch taken
but never finished (the process was killed, or shutdown's deadline passed) is, on disk, sent again after the
next start. Delivery through the persistent queue is therefore **at least once**: a batch the backend accepted
just before a crash, whose acknowledgement had not reached the disk yet, is sent a second time.

On-disk layout of one queue (one directory per exporter and signal, inside the file_storage directory)::

    lock                      flock()ed while a process owns the queue; the kernel releases it on SIGKILL
    00000000000000000000.seg  records appended in order; the file name is the id of its first record
    acks.log                  8-byte little-endian ids of finished records, appended

A record is ``<u32 length><u32 crc32>payload`` where payload is the serialized OTLP request. Recovery reads
every segment, stops a segment at the first torn or corrupt record (and truncates it there), and queues every
record whose id is not in ``acks.log``. A segment whose records are all finished is deleted; ``acks.log`` is
rewritten without ids older than the oldest segment once it grows past 1 MiB.

``fsync: true`` (file_storage) fsyncs after every append and acknowledgement, so a power loss loses nothing
that was accepted; without it writes go to the kernel's page cache, which survives a crash of the process
(SIGKILL, OOM kill) but not of the machine.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.component import Batch

__all__ = ["MemoryQueue", "PersistentQueue", "QueueFull", "SendingQueue"]

_HEADER = struct.Struct("<II")
_ACK = struct.Struct("<Q")
#: A new segment is started past this size, so finished data is given back to the disk in steps of it.
SEGMENT_BYTES = 8 * 1024 * 1024
_ACKS_COMPACT_BYTES = 1024 * 1024


class QueueFull(Exception):
    """The queue is at its request or byte capacity."""


class SendingQueue(Protocol):
    """What the exporter helper needs of a queue: the in-memory one or the write-ahead one on disk."""

    #: True when what is queued survives a restart (so shutdown keeps it instead of dropping it).
    persistent: bool

    def put(self, batch: Batch) -> None: ...

    async def get(self) -> tuple[Any, Batch]: ...

    def done(self, token: Any) -> None: ...

    def qsize(self) -> int: ...

    async def join(self) -> None: ...

    def take_remaining(self) -> list[Batch]:
        """Remove and return every batch not yet taken (shutdown drops them from an in-memory queue)."""
        ...

    def close(self) -> None: ...


class MemoryQueue:
    """Bounded FIFO in memory; ``sizer="bytes"`` bounds the serialized size instead of the request count."""

    persistent = False

    def __init__(self, capacity: int, sizer: str = "requests") -> None:
        self._queue: asyncio.Queue[tuple[int, Batch]] = asyncio.Queue()
        self._capacity = capacity
        self._by_bytes = sizer == "bytes"
        self._used = 0

    def put(self, batch: Batch) -> None:
        size = batch.ByteSize() if self._by_bytes else 1
        if self._used + size > self._capacity and (self._used or not self._by_bytes):
            raise QueueFull
        self._used += size
        self._queue.put_nowait((size, batch))

    async def get(self) -> tuple[Any, Batch]:
        token = await self._queue.get()
        return token, token[1]

    def done(self, token: Any) -> None:
        self._used -= token[0]
        self._queue.task_done()

    def qsize(self) -> int:
        return self._queue.qsize()

    async def join(self) -> None:
        await self._queue.join()

    def take_remaining(self) -> list[Batch]:
        remaining = []
        while not self._queue.empty():
            token = self._queue.get_nowait()
            remaining.append(token[1])
            self.done(token)
        return remaining

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class _Record:
    id: int
    segment: int
    offset: int
    length: int

    @property
    def disk_size(self) -> int:
        return _HEADER.size + self.length


class PersistentQueue:
    """Write-ahead queue in ``directory``; see the module docstring. Open with :meth:`open`."""

    persistent = True

    def __init__(self, directory: Path, parse: Callable[[bytes], Batch], *, capacity: int,
                 sizer: str = "requests", fsync: bool = False, logger: Any = None) -> None:
        self.directory = directory
        self._parse = parse
        self._capacity = capacity
        self._by_bytes = sizer == "bytes"
        self._fsync = fsync
        self._logger = logger or logging.getLogger("otelgw.persistent_queue")
        self._pending: collections.deque[_Record] = collections.deque()
        self._unfinished: dict[int, int] = {}  # segment first id -> records not finished yet
        self._fds: dict[int, int] = {}  # segment first id -> fd open for reading (and writing for the last)
        self._write_segment = -1
        self._write_offset = 0
        self._next_id = 0
        self._in_flight = 0
        self._bytes = 0  # disk bytes of unfinished records
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._lock_fd = -1
        self._acks_fd = -1

    # ------------------------------------------------------------ opening and recovery

    def open(self) -> int:
        """Lock the directory and recover; returns how many unfinished requests were found."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise OSError(f"persistent queue {self.directory} is in use by another process") from None
        acked = self._read_acks()
        records: list[_Record] = []
        for path in sorted(self.directory.glob("*.seg")):
            records.extend(self._recover_segment(int(path.stem), path))
        last_id = max([r.id for r in records] + list(acked) + [-1])
        self._next_id = last_id + 1
        for record in records:
            if record.id in acked:
                continue
            self._pending.append(record)
            self._unfinished[record.segment] = self._unfinished.get(record.segment, 0) + 1
            self._bytes += record.disk_size
        for segment in list(self._fds):
            if not self._unfinished.get(segment):
                self._delete_segment(segment)
        self._acks_fd = os.open(self.directory / "acks.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._compact_acks(force=True)
        self._sync_events()
        return len(self._pending)

    def _read_acks(self) -> set[int]:
        try:
            data = (self.directory / "acks.log").read_bytes()
        except FileNotFoundError:
            return set()
        whole = len(data) - len(data) % _ACK.size  # a torn last write is ignored
        return {value for (value,) in _ACK.iter_unpack(data[:whole])}

    def _recover_segment(self, first_id: int, path: Path) -> list[_Record]:
        fd = os.open(path, os.O_RDWR)
        self._fds[first_id] = fd
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        records, offset, record_id = [], 0, first_id
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            payload = data[start:start + length]
            if len(payload) != length or zlib.crc32(payload) != crc:
                break
            records.append(_Record(record_id, first_id, offset, length))
            record_id += 1
            offset = start + length
        if offset != len(data):
            self._logger.warning("Persistent queue: truncating a torn or corrupt record at the end of a segment.",
                                 extra={"segment": path.name, "kept_bytes": offset,
                                        "dropped_bytes": len(data) - offset})
            os.ftruncate(fd, offset)
        return records

    # ------------------------------------------------------------ queue operations

    def put(self, batch: Batch) -> None:
        payload = batch.SerializeToString()
        size = _HEADER.size + len(payload)
        used, needed = (self._bytes, size) if self._by_bytes else (len(self._pending) + self._in_flight, 1)
        if used + needed > self._capacity and (used or not self._by_bytes):
            raise QueueFull
        if self._write_segment < 0 or self._write_offset >= SEGMENT_BYTES:
            self._start_segment()
        fd = self._fds[self._write_segment]
        os.pwrite(fd, _HEADER.pack(len(payload), zlib.crc32(payload)) + payload, self._write_offset)
        if self._fsync:
            os.fdatasync(fd)
        record = _Record(self._next_id, self._write_segment, self._write_offset, len(payload))
        self._next_id += 1
        self._write_offset += size
        self._unfinished[record.segment] = self._unfinished.get(record.segment, 0) + 1
        self._bytes += size
        self._pending.append(record)
        self._sync_events()

    def _start_segment(self) -> None:
        previous = self._write_segment
        self._write_segment = self._next_id
        self._write_offset = 0
        path = self.directory / f"{self._write_segment:020d}.seg"
        self._fds[self._write_segment] = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        if self._fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the new file's name must survive a power loss too
            finally:
                os.close(dir_fd)
        if previous >= 0 and not self._unfinished.get(previous):
            self._delete_segment(previous)

    async def get(self) -> tuple[Any, Batch]:
        while True:
            while not self._pending:
                self._ready.clear()
                await self._ready.wait()
            record = self._pending.popleft()
            self._in_flight += 1
            self._sync_events()
            payload = os.pread(self._fds[record.segment], record.length, record.offset + _HEADER.size)
            try:
                return record, self._parse(payload)
            except Exception as exc:  # a checksummed record that does not parse: written by another version
                self._logger.error("Persistent queue: dropping a record that does not parse.",
                                   extra={"error": str(exc), "record_id": record.id})
                self.done(record)

    def done(self, token: Any) -> None:
        record: _Record = token
        self._in_flight -= 1
        self._bytes -= record.disk_size
        os.write(self._acks_fd, _ACK.pack(record.id))
        if self._fsync:
            os.fdatasync(self._acks_fd)
        self._unfinished[record.segment] -= 1
        if not self._unfinished[record.segment] and record.segment != self._write_segment:
            self._delete_segment(record.segment)
        self._compact_acks()
        self._sync_events()

    def _delete_segment(self, segment: int) -> None:
        self._unfinished.pop(segment, None)
        fd = self._fds.pop(segment, None)
        if fd is not None:
            os.close(fd)
        (self.directory / f"{segment:020d}.seg").unlink(missing_ok=True)

    def _compact_acks(self, force: bool = False) -> None:
        if not force and os.fstat(self._acks_fd).st_size < _ACKS_COMPACT_BYTES:
            return
        oldest = min(self._fds, default=self._next_id)
        keep = sorted(self._read_acks_from_disk_after(oldest))
        tmp = self.directory / "acks.log.tmp"
        tmp.write_bytes(b"".join(_ACK.pack(i) for i in keep))
        if self._fsync:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "acks.log")
        os.close(self._acks_fd)
        self._acks_fd = os.open(self.directory / "acks.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _read_acks_from_disk_after(self, oldest: int) -> set[int]:
        return {i for i in self._read_acks() if i >= oldest}

    def _sync_events(self) -> None:
        if self._pending:
            self._ready.set()
        if self._pending or self._in_flight:
            self._idle.clear()
        else:
            self._idle.set()

    def qsize(self) -> int:
        return len(self._pending)

    @property
    def unfinished(self) -> int:
        return len(self._pending) + self._in_flight

    async def join(self) -> None:
        await self._idle.wait()

    def take_remaining(self) -> list[Batch]:
        return []  # nothing to drop: what is unsent stays on disk for the next start

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        for attr in ("_acks_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)  # closing the lock file releases the flock
                setattr(self, attr, -1)
