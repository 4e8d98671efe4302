"""The exporter helper's sending queues: in memory, or a write-ahead log on disk (``sending_queue.storage``).

Both hand out ``(token, batch)`` pairs and are told when a batch is finished with ``done(token)``; a batch taken
but never finished (the process was killed, or shutdown's deadline passed) is, on disk, sent again after the
next start. Delivery through the persistent queue is therefore **at least once**: a batch the backend accepted
just before a crash, whose acknowledgement had not reached the disk yet, is sent a second time.

On-disk layout of one queue (one directory per exporter and signal, inside the file_storage directory)::

    lock                      flock()ed while a process owns the queue; the kernel releases it on SIGKILL
    00000000000000000000.wal  records appended in order (gateway/helpers/walog.py: magic, length, id, CRC-32,
                              payload = the serialized OTLP request); the file name is the id of its first record
    acks.log                  finished record ids, appended: 8-byte little-endian id + CRC-32 of those 8 bytes

A record's payload is the serialized OTLP request. A request that came with client metadata (a receiver's
``include_metadata``, ``gateway.client``) is written behind a header holding that metadata, so headers_setter's
``from_context`` and the like see the same sender when the record is sent, also after a restart::

    00 4f 47 43 ("\0OGC")  u32 LE length  JSON {"metadata": {name: [values]}, "address": "host:port"}  request

(a serialized request never starts with a 0 byte: protobuf has no field 0). The metadata is kept as received,
credentials included (headers_setter may pass a tenant's token on); the queue's files are readable by their
owner only (0600).

``put`` returns once the record is written (and, with ``fsync: true``, fdatasync'ed): the exporter answers the
sender only after that, so an acknowledged request is in the kernel's page cache (survives SIGKILL and OOM
kills) or, with fsync, on the disk (survives power loss). A failed write (disk full, I/O error, short write)
leaves nothing behind and raises ``StorageUnavailable``, a retryable error: the sender is told to retry while
the workers keep draining what is queued, and the first write that succeeds again ends the refusals.

While the backlog is small (``CACHE_BYTES``) a queued batch is also kept as the message it was put as, so a
worker does not parse it back from disk; after a restart every record is read from disk.

Recovery reads every segment and skips only damaged records (the record framing lets it find the next valid
one), treats a zero-filled tail as empty, and queues every record whose id is not in ``acks.log``. A damaged
acks.log entry is skipped (the request is then sent again: a duplicate, never a loss); an id in it that was
never written is ignored with a warning. A segment whose records are all finished is deleted; ``acks.log`` is
rewritten with the ids of the segments still on disk at every start and once it grows past 1 MiB.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import fcntl
import json
import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias, cast

from gateway.client import ClientInfo
from gateway.component import Batch, Signal
from gateway.helpers.batching import measure
from gateway.helpers.walog import HEADER_BYTES, SegmentLog, StorageUnavailable
from gateway.wirebytes import WireBatch, wire_bytes

__all__ = ["MemoryQueue", "PersistentQueue", "QueueFull", "SendingQueue", "StorageUnavailable", "merge_queue"]

_ACK_ID = struct.Struct("<Q")
_ACK_CRC = struct.Struct("<I")
#: A new segment is started past this size, so finished data is given back to the disk in steps of it.
SEGMENT_BYTES = 8 * 1024 * 1024
_ACKS_COMPACT_BYTES = 1024 * 1024
#: Serialized bytes of queued batches also kept in memory as messages (a worker then skips the parse).
CACHE_BYTES = 16 * 1024 * 1024
#: Starts a record whose request came with client metadata (see the module docstring).
_WITH_SENDER = b"\x00OGC"
_SENDER_LENGTH = struct.Struct("<I")


def pack_sender(sender: ClientInfo, payload: bytes) -> bytes:
    """``payload`` behind the header that carries ``sender`` (the module docstring's record layout)."""
    meta = json.dumps({"metadata": {k: list(v) for k, v in sender.metadata.items()}, "address": sender.address},
                      separators=(",", ":")).encode()
    return b"".join((_WITH_SENDER, _SENDER_LENGTH.pack(len(meta)), meta, payload))


def unpack_sender(payload: bytes) -> tuple[ClientInfo | None, bytes]:
    """The sender written with a record (None without one) and the request's bytes; ValueError when damaged."""
    if not payload.startswith(_WITH_SENDER):
        return None, payload
    start = len(_WITH_SENDER) + _SENDER_LENGTH.size
    (length,) = _SENDER_LENGTH.unpack_from(payload, len(_WITH_SENDER))
    if start + length > len(payload):
        raise ValueError("client metadata header longer than the record")
    meta = json.loads(payload[start:start + length])
    sender = ClientInfo({str(k): tuple(str(v) for v in values) for k, values in meta["metadata"].items()},
                        str(meta.get("address", "")))
    return sender, payload[start + length:]


#: What a sending queue holds: a request message, or serialized requests (an exporter that sends wire bytes).
Queued: TypeAlias = Batch | WireBatch


class QueueFull(Exception):
    """The queue is at its request or byte capacity."""


class SendingQueue(Protocol):
    """What the exporter helper needs of a queue: the in-memory one or the write-ahead one on disk."""

    #: True when what is queued survives a restart (so shutdown keeps it instead of dropping it).
    persistent: bool

    def put(self, batch: Queued, sender: ClientInfo | None = None) -> int:
        """Queue ``batch`` with the client metadata it came with; returns its key (see :meth:`key`)."""
        ...

    async def get(self) -> tuple[Any, Queued]: ...

    def key(self, token: Any) -> int:
        """The key ``put`` returned for the batch of ``token``, while that batch is in the queue."""
        ...

    def sender(self, token: Any) -> ClientInfo | None:
        """The client metadata the batch of ``token`` was queued with."""
        ...

    def done(self, token: Any) -> None: ...

    def qsize(self) -> int: ...

    async def join(self) -> None: ...

    def take_remaining(self) -> list[Queued]:
        """Remove and return every batch not yet taken (shutdown drops them from an in-memory queue)."""
        ...

    def close(self) -> None: ...


class MemoryQueue:
    """Bounded FIFO in memory; ``sizer`` ``bytes`` (serialized size) or ``items`` (spans, data points, log
    records of ``signal``) bound the queue instead of the request count. One request larger than the whole
    capacity is still taken into an empty queue, so it cannot block forever."""

    persistent = False

    def __init__(self, capacity: int, sizer: str = "requests", signal: Signal = Signal.TRACES) -> None:
        self._queue: asyncio.Queue[tuple[int, Queued, ClientInfo | None]] = asyncio.Queue()
        self._capacity = capacity
        self._sizer = sizer
        self._signal = signal
        self._used = 0

    def put(self, batch: Queued, sender: ClientInfo | None = None) -> int:
        size = measure(self._signal, batch, self._sizer)
        if self._used + size > self._capacity and (self._used or self._sizer == "requests"):
            raise QueueFull
        self._used += size
        self._queue.put_nowait((size, batch, sender))
        return id(batch)  # unique while the batch is queued: the queue holds it

    async def get(self) -> tuple[Any, Queued]:
        token = await self._queue.get()
        return token, token[1]

    def key(self, token: Any) -> int:
        return id(token[1])

    def sender(self, token: Any) -> ClientInfo | None:
        sender: ClientInfo | None = token[2]
        return sender

    def done(self, token: Any) -> None:
        self._used -= token[0]
        self._queue.task_done()

    def qsize(self) -> int:
        return self._queue.qsize()

    async def join(self) -> None:
        await self._queue.join()

    def take_remaining(self) -> list[Queued]:
        remaining = []
        while not self._queue.empty():
            token = self._queue.get_nowait()
            remaining.append(token[1])
            self.done(token)
        return remaining

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _Record:
    id: int
    segment: int
    offset: int
    length: int

    @property
    def disk_size(self) -> int:
        return HEADER_BYTES + self.length


class PersistentQueue:
    """Write-ahead queue in ``directory``; see the module docstring. Open with :meth:`open`."""

    persistent = True

    def __init__(self, directory: Path, parse: Callable[[bytes], Queued], *, capacity: int,
                 sizer: str = "requests", fsync: bool = False, logger: Any = None) -> None:
        self.directory = directory
        self._parse = parse
        self._capacity = capacity
        self._by_bytes = sizer == "bytes"
        self._fsync = fsync
        self._logger = logger or logging.getLogger("otelgw.persistent_queue")
        self._log = SegmentLog(directory, segment_bytes=SEGMENT_BYTES, fsync=fsync, logger=self._logger)
        self._pending: collections.deque[_Record] = collections.deque()
        #: Acknowledged ids per segment still on disk: what a compacted acks.log must keep.
        self._acked: dict[int, list[int]] = {}
        self._unwritten_acks: list[int] = []  # acknowledgements a failed write could not store yet
        self._in_flight = 0
        self._bytes = 0  # disk bytes of unfinished records
        self._cache: dict[int, Queued] = {}  # record id -> the batch as put, for records not taken yet
        #: record id -> the client metadata of a record taken or cached (read back from disk otherwise).
        self._senders: dict[int, ClientInfo] = {}
        self._cached_bytes = 0
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._lock_fd = -1
        self._acks_fd = -1
        #: What recovery dropped: damaged records and their bytes, and acknowledgements of ids never written.
        self.dropped_records = 0
        self.dropped_bytes = 0
        self.stray_acks = 0

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
        if any(self.directory.glob("*.seg")):
            self._logger.warning("Persistent queue: segments of an older on-disk format (*.seg) are left alone and "
                                 "not sent; this version writes *.wal.", extra={"directory": str(self.directory)})
        acked, garbage = _read_acks(self.directory / "acks.log")
        records = self._log.recover()
        for record in records:
            if record.id in acked:
                self._acked.setdefault(record.segment, []).append(record.id)
                continue
            self._log.retain(record)
            self._pending.append(_Record(record.id, record.segment, record.offset, record.length))
            self._bytes += HEADER_BYTES + record.length
        self.dropped_records, self.dropped_bytes = self._log.dropped_records, self._log.dropped_bytes
        self.stray_acks = sum(1 for i in acked if i >= self._log.next_id)
        if self.stray_acks or garbage:
            self._logger.warning("Persistent queue: ignored acknowledgements of records that were never written and "
                                 "damaged bytes in acks.log.",
                                 extra={"stray_ids": self.stray_acks, "damaged_bytes": garbage,
                                        "directory": str(self.directory)})
        self._log.drop_unneeded()
        self._forget_deleted_segments()
        self._acks_fd = os.open(self.directory / "acks.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # Rewritten before anything new is written: it then holds only ids of records still on disk, so a
        # stray id can never match a record written from now on.
        if not self._compact_acks():
            raise OSError(f"persistent queue {self.directory}: cannot rewrite acks.log (disk full?)")
        self._sync_events()
        return len(self._pending)

    # ------------------------------------------------------------ queue operations

    def put(self, batch: Queued, sender: ClientInfo | None = None) -> int:
        """Append ``batch`` (with ``sender`` when it came with client metadata); returns the record's id.
        QueueFull at capacity, StorageUnavailable (retryable) when the write fails."""
        # The receiver's request bytes when they are still exact (no processor changed the batch): no serializing.
        payload = batch.data if isinstance(batch, WireBatch) else wire_bytes(batch) or batch.SerializeToString()
        if sender is not None:
            payload = pack_sender(sender, payload)
        size = HEADER_BYTES + len(payload)
        used, needed = (self._bytes, size) if self._by_bytes else (len(self._pending) + self._in_flight, 1)
        if used + needed > self._capacity and (used or not self._by_bytes):
            raise QueueFull
        segment, offset, record_id = self._log.append(payload)
        if self._unwritten_acks:  # a write succeeded again: store what a full disk held back
            self._write_acks()
        self._bytes += size
        self._pending.append(_Record(record_id, segment, offset, len(payload)))
        if self._cached_bytes + len(payload) <= CACHE_BYTES:
            # Kept in memory too while the backlog is small, so a worker gets the message without parsing it again.
            self._cache[record_id] = batch
            self._cached_bytes += len(payload)
            if sender is not None:
                self._senders[record_id] = sender
        self._sync_events()
        return record_id

    async def get(self) -> tuple[Any, Queued]:
        while True:
            while not self._pending:
                self._ready.clear()
                await self._ready.wait()
            record = self._pending.popleft()
            self._in_flight += 1
            self._sync_events()
            cached = self._cache.pop(record.id, None)
            if cached is not None:
                self._cached_bytes -= record.length
                return record, cached
            try:
                payload = self._log.read(record.segment, record.offset, record.length)
            except OSError:
                self._pending.append(record)  # kept: a later read may succeed, and the next start tries again
                self._in_flight -= 1
                self._sync_events()
                raise
            try:
                sender, request = unpack_sender(payload)
                batch = self._parse(request)
            except Exception as exc:  # a checksummed record that does not parse: written by another version
                self._logger.error("Persistent queue: dropping a record that does not parse.",
                                   extra={"error": str(exc), "record_id": record.id})
                self.done(record)
                continue
            if sender is not None:
                self._senders[record.id] = sender
            return record, batch

    def key(self, token: Any) -> int:
        record: _Record = token
        return record.id

    def sender(self, token: Any) -> ClientInfo | None:
        record: _Record = token
        return self._senders.get(record.id)

    def done(self, token: Any) -> None:
        """The request left the queue for good (sent, or dropped as permanent). Never raises on a full disk."""
        record: _Record = token
        self._senders.pop(record.id, None)
        self._in_flight -= 1
        self._bytes -= record.disk_size
        self._acked.setdefault(record.segment, []).append(record.id)
        self._unwritten_acks.append(record.id)
        self._write_acks()
        self._log.release(record.segment)
        self._forget_deleted_segments()
        if os.fstat(self._acks_fd).st_size >= _ACKS_COMPACT_BYTES:
            self._compact_acks()
        self._sync_events()

    def _write_acks(self) -> None:
        entries = b"".join(_ack(i) for i in self._unwritten_acks)
        try:
            written = os.write(self._acks_fd, entries)
            if written != len(entries):
                # A torn entry is skipped at recovery; the whole batch is written again after it.
                raise OSError(errno.ENOSPC, "short write")
            if self._fsync:
                os.fdatasync(self._acks_fd)
        except OSError as exc:
            if len(self._unwritten_acks) == 1:
                self._logger.warning("Persistent queue: an acknowledgement could not be written; it is retried with "
                                     "the next one (until then a restart sends the request again).",
                                     extra={"error": str(exc)})
            return
        self._unwritten_acks.clear()

    def _forget_deleted_segments(self) -> None:
        """Acknowledgements of deleted segments are not needed any more (acks.log loses them when compacted)."""
        live = set(self._log.segments())
        for segment in [s for s in self._acked if s not in live]:
            del self._acked[segment]
        if self._unwritten_acks and not self._acked:
            self._unwritten_acks.clear()

    def _compact_acks(self) -> bool:
        """Rewrite acks.log with the acknowledged ids of segments still on disk; False if the write failed."""
        tmp = self.directory / "acks.log.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(b"".join(_ack(i) for ids in self._acked.values() for i in ids))
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
            os.replace(tmp, self.directory / "acks.log")
        except OSError as exc:
            self._logger.warning("Persistent queue: could not compact acks.log; appending to the old one.",
                                 extra={"error": str(exc)})
            tmp.unlink(missing_ok=True)
            return False
        if self._acks_fd >= 0:
            os.close(self._acks_fd)
        self._acks_fd = os.open(self.directory / "acks.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._unwritten_acks.clear()  # the rewritten file holds every acknowledgement
        return True

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

    @property
    def disk_bytes(self) -> int:
        return self._log.disk_bytes

    async def join(self) -> None:
        await self._idle.wait()

    def take_remaining(self) -> list[Queued]:
        return []  # nothing to drop: what is unsent stays on disk for the next start

    def close(self) -> None:
        if self._unwritten_acks and self._acks_fd >= 0:
            self._write_acks()
        self._log.close()
        for attr in ("_acks_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)  # closing the lock file releases the flock
                setattr(self, attr, -1)


def merge_queue(source: Path, target: Path, fsync: bool) -> int:
    """Append the unsent records of the queue in ``source`` to the queue in ``target``, payloads as written (sender
    metadata included), and return how many. Both directories are locked meanwhile. ``source`` is left as it was:
    the caller removes it once this returned, so a crash in between means duplicates, never a loss."""
    unlimited = 1 << 62
    old = PersistentQueue(source, cast("Callable[[bytes], Queued]", bytes), capacity=unlimited, fsync=fsync)
    new = PersistentQueue(target, cast("Callable[[bytes], Queued]", bytes), capacity=unlimited, fsync=fsync)
    old.open()
    try:
        new.open()
        try:
            for record in old._pending:
                new._log.append(old._log.read(record.segment, record.offset, record.length))
            return len(old._pending)
        finally:
            new.close()
    finally:
        old.close()


def _ack(record_id: int) -> bytes:
    packed = _ACK_ID.pack(record_id)
    return packed + _ACK_CRC.pack(zlib.crc32(packed))


def _read_acks(path: Path) -> tuple[set[int], int]:
    """The acknowledged ids in acks.log, and how many bytes of it were damaged (skipped, resynchronised)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set(), 0
    acked: set[int] = set()
    pos, size, damaged = 0, len(data), 0
    entry = _ACK_ID.size + _ACK_CRC.size
    unpack_id, unpack_crc, crc32 = _ACK_ID.unpack_from, _ACK_CRC.unpack_from, zlib.crc32
    while pos + entry <= size:
        if crc32(data[pos:pos + 8]) == unpack_crc(data, pos + 8)[0]:
            acked.add(unpack_id(data, pos)[0])
            pos += entry
            continue
        # Damage: step one byte and look for the next entry whose checksum holds (a zero run is skipped whole).
        step = 1 if data[pos] else max(1, size - pos - len(data[pos:].lstrip(b"\0")) - 8)
        damaged += step
        pos += step
    if pos < size and data[pos:].strip(b"\0"):
        damaged += size - pos  # a torn last entry
    return acked, damaged
