"""``tail_sampling``'s storage: buffered spans and decisions written ahead to disk, recovered after a crash.

One write-ahead log (``gateway/helpers/walog.py``: magic, length, id, CRC-32 per record) in a directory of the
``file_storage`` extension named by ``storage``. Two record types, both starting with a type byte and the wall
clock time (float64) they were written at:

``S`` spans
    The part of one incoming request that waits for a decision, as serialized OTLP request bytes: the request
    as it came when every span in it starts or joins a waiting trace (the common case), otherwise the waiting
    runs re-assembled. Written before the spans join their traces and before the sender is answered.
``D`` decisions
    ``(trace id, outcome, policy, composite policy)`` for every trace decided (or evicted) in one round, written
    after the kept spans were handed to the next component.

Replay reads the records in id order. A span of trace T in spans record ``r`` is waiting unless a decision for
T was written after ``r`` (it was decided then, and kept spans were passed on): waiting spans rejoin their
traces with the first arrival time of their trace, and decision records refill the decision caches, so late
spans follow the decisions as before. A segment file is deleted when no waiting trace has spans in it, which
is the compaction: the log holds about ``decision_wait`` of traffic plus one segment.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import EnvelopeTable, SegmentLog, StorageUnavailable, assemble, split_request

__all__ = ["DISCARDED", "EVICTED", "KEPT", "Decided", "Replayed", "TraceStorage"]

KEPT, DISCARDED, EVICTED = 1, 0, 2
_SPANS, _DECISIONS = b"S", b"D"
_TIME = struct.Struct("<d")
_ENTRY = struct.Struct("<BBHH")  # trace id length, outcome, policy length, composite length
#: Segment size: small, so a decided stretch of traffic is given back soon.
SEGMENT_BYTES = 4 * 1024 * 1024

#: (trace id, outcome, policy, composite policy, segments holding its spans)
Decided = tuple[bytes, int, str, str | None, Sequence[int]]


@dataclass
class Replayed:
    """What recovery found, in log order: spans records still needed and decisions."""

    #: (record id, segment, wall time, request bytes)
    spans: list[tuple[int, int, float, bytes]] = field(default_factory=list)
    #: trace id -> id of the last decision record naming it: its spans in older spans records are not waiting
    last_decision: dict[bytes, int] = field(default_factory=dict)
    #: (wall time, trace id, outcome, policy, composite), oldest first
    decisions: list[tuple[float, bytes, int, str, str | None]] = field(default_factory=list)
    dropped_records: int = 0
    dropped_bytes: int = 0


class TraceStorage:
    def __init__(self, directory: Path, *, fsync: bool, max_bytes: int, logger: Any) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.logger = logger
        self.log = SegmentLog(directory, segment_bytes=min(SEGMENT_BYTES, max(max_bytes // 4, 64 * 1024)),
                              fsync=fsync, logger=logger)
        self._decision_write_failed = False
        self._lock_fd = -1

    # ------------------------------------------------------------ recovery

    def open(self) -> Replayed:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise OSError(f"tail_sampling storage {self.directory} is in use by another process") from None
        records = self.log.recover()
        out = Replayed(dropped_records=self.log.dropped_records, dropped_bytes=self.log.dropped_bytes)
        spans, last_decision = out.spans, out.last_decision
        for record in records:
            payload = self.log.read(record.segment, record.offset, record.length)
            kind, wall = payload[:1], _TIME.unpack_from(payload, 1)[0]
            if kind == _SPANS:
                spans.append((record.id, record.segment, wall, payload[1 + _TIME.size:]))
            elif kind == _DECISIONS:
                for trace_id, outcome, policy, composite in _decode_decisions(payload, 1 + _TIME.size):
                    last_decision[trace_id] = record.id
                    out.decisions.append((wall, trace_id, outcome, policy, composite))
        return out

    def take_over_adopted(self) -> list[tuple[int, int, float, bytes]]:
        """The waiting spans of the logs another worker count left beside this one (``<directory>.from-*``, put
        there by ``otelgw run --workers``), written into this log first: ``(record id, segment, wall time,
        request bytes)`` as in ``Replayed.spans``, with ids above every decision of this log. Each adopted log is
        removed once its spans are in this one (a crash in between replays them twice, never loses them)."""
        found: list[tuple[int, int, float, bytes]] = []
        for adopted in sorted(self.directory.parent.glob(f"{self.directory.name}.from-*")):
            if not adopted.is_dir():
                continue
            other = TraceStorage(adopted, fsync=False, max_bytes=1 << 62, logger=self.logger)
            try:
                replay = other.open()
            except OSError as exc:  # held by a running process, or unreadable: left for a later start
                self.logger.error("tail_sampling storage left by another worker count not taken over",
                                  extra={"directory": str(adopted), "error": str(exc)})
                continue
            try:
                for record_id, _segment, wall, body in replay.spans:
                    waiting = _waiting_part(body, record_id, replay.last_decision)
                    if waiting:
                        segment = self.write_spans(waiting, wall)
                        found.append((1 << 62, segment, wall, waiting))
            finally:
                other.close()
            shutil.rmtree(adopted)
            self.logger.info("tail_sampling storage of another worker count taken over",
                             extra={"from": str(adopted), "to": str(self.directory)})
        return found

    def keep_segment(self, segment: int) -> None:
        """A waiting trace has spans in ``segment`` (released again through :meth:`retire`)."""
        self.log.retain((segment, 0))

    def recovered(self) -> None:
        """Replay is over: delete the segments no waiting trace needs."""
        self.log.drop_unneeded()

    # ------------------------------------------------------------ writing

    @property
    def full(self) -> bool:
        return self.log.disk_bytes >= self.max_bytes

    def would_overflow(self, size: int) -> bool:
        used = self.log.disk_bytes
        return used > 0 and used + size > self.max_bytes

    def write_spans(self, request: bytes, wall: float) -> int:
        """Append waiting spans; the segment they went to. Raises StorageUnavailable (retryable) on failure."""
        segment, _offset, _id = self.log.append(b"".join((_SPANS, _TIME.pack(wall), request)), retain=False)
        return segment

    def retire(self, decided: Iterable[Decided], wall: float) -> None:
        """Record decisions, then give back the segments the decided traces held. Never raises: a decision
        that could not be written only means the trace may be decided again (a duplicate) after a crash."""
        decided = list(decided)
        if not decided:
            return
        parts = [_DECISIONS, _TIME.pack(wall)]
        for trace_id, outcome, policy, composite, _segments in decided:
            policy_bytes = policy.encode()
            composite_bytes = (composite or "").encode()
            parts.append(_ENTRY.pack(len(trace_id), outcome, len(policy_bytes), len(composite_bytes)))
            parts.extend((trace_id, policy_bytes, composite_bytes))
        try:
            self.log.append(b"".join(parts), retain=False)
            self._decision_write_failed = False
        except StorageUnavailable as exc:
            if not self._decision_write_failed:
                self.logger.warning("tail_sampling storage: decisions could not be written; after a crash their "
                                    "traces may be decided (and kept spans sent) again.", extra={"error": str(exc)})
            self._decision_write_failed = True
        release = self.log.release
        for *_, segments in decided:
            for segment in segments:
                release(segment)

    def close(self) -> None:
        self.log.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock (as SIGKILL does)
            self._lock_fd = -1


def _waiting_part(body: bytes, record_id: int, last_decision: dict[bytes, int]) -> bytes:
    """The runs of spans record ``body`` whose traces were not decided after it, as request bytes (the record
    itself when none was)."""
    scopes = split_request(body, None)
    if not any(last_decision.get(run[0], -1) > record_id for _, _, runs in scopes for run in runs):
        return body
    table = EnvelopeTable()
    return assemble((table.get(resource, scope), run[1]) for resource, scope, runs in scopes for run in runs
                    if last_decision.get(run[0], -1) <= record_id)


def _decode_decisions(payload: bytes, pos: int) -> list[tuple[bytes, int, str, str | None]]:
    out = []
    end = len(payload)
    while pos + _ENTRY.size <= end:
        id_length, outcome, policy_length, composite_length = _ENTRY.unpack_from(payload, pos)
        pos += _ENTRY.size
        trace_id = payload[pos:pos + id_length]
        pos += id_length
        policy = payload[pos:pos + policy_length].decode(errors="replace")
        pos += policy_length
        composite = payload[pos:pos + composite_length].decode(errors="replace") or None
        pos += composite_length
        out.append((trace_id, outcome, policy, composite))
    return out
