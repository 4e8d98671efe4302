"""A segmented write-ahead log: checked appends, and a recovery that skips only corrupt records.

Shared by the exporter helper's persistent sending queue and by ``tail_sampling``'s storage. A log is a
directory of segment files ``<first id, 20 digits>.wal``; records are appended to the newest one and a segment is
deleted once its owner says nothing in it is needed any more (:meth:`SegmentLog.release`). A record is::

    magic  4 bytes  d7 4f 47 57 ("\\xd7OGW")
    length u32 LE   payload bytes
    id     u64 LE   the record's id: ids grow by one per record, across segments
    crc    u32 LE   CRC-32 of length, id and payload
    payload

The magic lets recovery find the next record after a damaged one (a flipped bit, a torn page) by searching for
it and accepting a candidate only when its CRC matches; the id in the header tells how many records a damaged
region held, and keeps the ids of the records after it right. A zero-filled tail (preallocated or torn pages)
holds no magic, so it is recognised as empty, never as records, and cut off. Recovery logs and counts what it
dropped (records and bytes); nothing is ever invented.

Every append is checked: a short write, ``ENOSPC`` or ``EIO`` (on the write or on the ``fdatasync`` of
``fsync: true``) cuts the segment back to where the record started and raises :class:`StorageUnavailable`, a
retryable error, so senders are answered "try again" (gRPC UNAVAILABLE, HTTP 503) while what is already in the
log keeps draining. The next append simply tries again: there is no stuck state to clear when space returns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import RetryableError

__all__ = ["HEADER_BYTES", "MAGIC", "Recovered", "SegmentLog", "StorageUnavailable", "scan"]

MAGIC = b"\xd7OGW"
_HEADER = struct.Struct("<4sIQI")
_CHECKED = struct.Struct("<IQ")  # the header fields the CRC covers, before the payload
HEADER_BYTES = _HEADER.size
SUFFIX = ".wal"
#: A record longer than this is never written, so a damaged length field cannot make recovery read gigabytes.
MAX_RECORD_BYTES = 1 << 30


class StorageUnavailable(RetryableError):
    """An append failed (disk full, I/O error, short write); nothing of it stays in the log. Retryable."""

    def __init__(self, message: str, disk_full: bool) -> None:
        super().__init__(message, retry_after=1.0)
        self.disk_full = disk_full


@dataclass(frozen=True, slots=True)
class Recovered:
    """One record found by recovery: where its payload is."""

    id: int
    segment: int
    offset: int  # of the header
    length: int


@dataclass
class ScanResult:
    records: list[Recovered]
    end: int  # end of the last valid record: everything after it is damage or zeros
    dropped_records: int
    dropped_bytes: int
    zero_tail_bytes: int


def _crc(length: int, record_id: int, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(_CHECKED.pack(length, record_id)))


def encode(record_id: int, payload: bytes) -> bytes:
    """The header of ``payload`` as record ``record_id`` (the payload follows it on disk)."""
    return _HEADER.pack(MAGIC, len(payload), record_id, _crc(len(payload), record_id, payload))


def scan(data: bytes, segment: int) -> ScanResult:
    """Every valid record in one segment's bytes, resynchronising on the next valid header after damage."""
    records: list[Recovered] = []
    view = memoryview(data)
    size = len(data)
    pos = 0
    expected = segment  # id the next record should have
    dropped_records = dropped_bytes = 0
    damaged_from = -1  # start of a damaged region not yet accounted for
    while pos + HEADER_BYTES <= size:
        if data.startswith(MAGIC, pos):
            _, length, record_id, crc = _HEADER.unpack_from(data, pos)
            start = pos + HEADER_BYTES
            if (length <= MAX_RECORD_BYTES and start + length <= size and record_id >= expected
                    and _crc(length, record_id, view[start:start + length]) == crc):
                if damaged_from >= 0:
                    dropped_bytes += pos - damaged_from
                    dropped_records += max(1, record_id - expected)
                    damaged_from = -1
                records.append(Recovered(record_id, segment, pos, length))
                expected = record_id + 1
                pos = start + length
                continue
        if damaged_from < 0:
            damaged_from = pos
        found = data.find(MAGIC, pos + 1)
        pos = found if found >= 0 else size
    end = records[-1].offset + HEADER_BYTES + records[-1].length if records else 0
    # Everything after the last valid record: zeros (preallocated or torn pages) are empty space; anything else
    # before them is one damaged record (a torn write, or damage that ran to the end).
    damage = len(data[end:].rstrip(b"\0")) if end < size else 0
    if damage:
        dropped_records += 1
        dropped_bytes += damage
    zero_tail = size - end - damage
    return ScanResult(records, end, dropped_records, dropped_bytes, zero_tail)


class SegmentLog:
    """The segment files of one log directory; the owner keeps a count of live records per segment."""

    def __init__(self, directory: Path, *, segment_bytes: int, fsync: bool, logger: Any) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self.logger = logger
        self.next_id = 0
        self.dropped_records = 0
        self.dropped_bytes = 0
        self._fds: dict[int, int] = {}  # segment first id -> fd
        self._sizes: dict[int, int] = {}  # segment first id -> bytes
        self._live: dict[int, int] = {}  # segment first id -> records still needed
        self._write_segment = -1
        self._write_offset = 0
        #: True after a failed append: the write segment is then given back as soon as nothing in it is needed,
        #: so a full disk regains the space of what has drained.
        self.failing = False

    # ------------------------------------------------------------ recovery

    def recover(self) -> list[Recovered]:
        """Scan every segment (oldest first) and return its valid records; counts and logs what was dropped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        records: list[Recovered] = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                segment = int(path.stem)
            except ValueError:
                continue
            fd = os.open(path, os.O_RDWR)
            self._fds[segment] = fd
            data = _read_all(fd)
            result = scan(data, segment)
            if result.dropped_records or result.dropped_bytes:
                self.logger.error(
                    "Write-ahead log: skipped damaged records during recovery; the records after them are kept.",
                    extra={"segment": path.name, "dropped_records": result.dropped_records,
                           "dropped_bytes": result.dropped_bytes, "records_kept": len(result.records)})
            if result.zero_tail_bytes:
                self.logger.info("Write-ahead log: a zero-filled tail (preallocated or torn pages) holds no records.",
                                 extra={"segment": path.name, "zero_bytes": result.zero_tail_bytes})
            if result.end < len(data):
                _truncate(fd, result.end)  # damage or zeros after the last record: give the space back
            self.dropped_records += result.dropped_records
            self.dropped_bytes += result.dropped_bytes
            self._sizes[segment] = result.end
            self._live[segment] = 0
            records.extend(result.records)
            self.next_id = max(self.next_id, segment + 1 if not result.records else result.records[-1].id + 1)
        return records

    def retain(self, record: Recovered | tuple[int, int]) -> None:
        """Count a recovered record as still needed (its segment is kept until it is released)."""
        segment = record.segment if isinstance(record, Recovered) else record[0]
        self._live[segment] = self._live.get(segment, 0) + 1

    def drop_unneeded(self) -> None:
        """After recovery: delete the segments none of whose records were retained."""
        for segment in [s for s, live in self._live.items() if not live]:
            self._delete(segment)

    # ------------------------------------------------------------ writing

    def append(self, payload: bytes, retain: bool = True) -> tuple[int, int, int]:
        """Write one record; returns ``(segment, offset, id)``. Raises StorageUnavailable, leaving nothing."""
        if self._write_segment < 0 or self._write_offset >= self.segment_bytes:
            self._start_segment()
        segment, offset, record_id = self._write_segment, self._write_offset, self.next_id
        header = encode(record_id, payload)
        fd = self._fds[segment]
        total = len(header) + len(payload)
        try:
            written = os.pwritev(fd, [header, payload], offset)
            while written < total:  # a short write: try the rest once more to get the real error
                more = os.pwrite(fd, (header + payload)[written:], offset + written)
                if more <= 0:
                    raise OSError(errno.ENOSPC, "short write")
                written += more
            if self.fsync:
                os.fdatasync(fd)
        except OSError as exc:
            _truncate(fd, offset)
            self._failed(exc)
        self.failing = False
        self.next_id += 1
        self._write_offset = offset + total
        self._sizes[segment] = self._write_offset
        if retain:
            self._live[segment] = self._live.get(segment, 0) + 1
        return segment, offset, record_id

    def _failed(self, exc: OSError) -> None:
        disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if not self.failing:
            self.logger.error("Write-ahead log: a write failed; refusing new data (retryable) until writes succeed "
                              "again. What is already stored keeps draining.",
                              extra={"directory": str(self.directory), "error": str(exc)})
        self.failing = True
        reason = "disk full" if disk_full else f"I/O error ({exc.strerror or exc})"
        raise StorageUnavailable(f"write-ahead log in {self.directory}: {reason}; retry later", disk_full) from exc

    def _start_segment(self) -> None:
        previous = self._write_segment
        segment = self.next_id
        path = self.directory / f"{segment:020d}{SUFFIX}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            if self.fsync:
                _fsync_dir(self.directory)  # the new file's name must survive a power loss too
        except OSError as exc:
            self._failed(exc)
        self._fds[segment] = fd
        self._sizes[segment] = 0
        self._live.setdefault(segment, 0)
        self._write_segment, self._write_offset = segment, 0
        if previous >= 0 and not self._live.get(previous):
            self._delete(previous)

    # ------------------------------------------------------------ reading and releasing

    def read(self, segment: int, offset: int, length: int) -> bytes:
        return os.pread(self._fds[segment], length, offset + HEADER_BYTES)

    def release(self, segment: int, count: int = 1) -> None:
        """``count`` records of ``segment`` are no longer needed; a segment nothing needs is deleted."""
        live = self._live.get(segment)
        if live is None:
            return  # already deleted
        live -= count
        self._live[segment] = live
        if live > 0:
            return
        if segment != self._write_segment:
            self._delete(segment)
        elif self.failing or self._write_offset >= self.segment_bytes // 8:
            # The write segment is given back too once empty and large enough (or while writes fail, so a
            # full disk gets the space back); the next append starts a new one.
            self._delete(segment)
            self._write_segment = -1

    def _delete(self, segment: int) -> None:
        self._live.pop(segment, None)
        self._sizes.pop(segment, None)
        fd = self._fds.pop(segment, None)
        if fd is not None:
            os.close(fd)
        try:
            (self.directory / f"{segment:020d}{SUFFIX}").unlink(missing_ok=True)
        except OSError as exc:  # never fatal: the next start deletes it (nothing in it is retained)
            self.logger.warning("Write-ahead log: could not delete a finished segment.",
                                extra={"segment": segment, "error": str(exc)})

    @property
    def disk_bytes(self) -> int:
        """Bytes of every segment file, as written."""
        return sum(self._sizes.values())

    @property
    def oldest_segment(self) -> int:
        return min(self._fds, default=self.next_id)

    def segments(self) -> Iterator[int]:
        return iter(sorted(self._fds))

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(size - offset, 1 << 26), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _truncate(fd: int, size: int) -> None:
    with contextlib.suppress(OSError):  # the next recovery cuts a torn tail off anyway
        os.ftruncate(fd, size)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
