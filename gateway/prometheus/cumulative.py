"""Delta → cumulative, as the metrics data model describes it (docs/protocols.md §5.2), with bounded memory.

State is kept per stream (the translated series identity: name and labels, which carry resource, scope and
attributes). A point that lines up with the last one (its start equals the stream's last time) is added; a point
that starts before the stream did is dropped; any other gap or overlap is a restart, and the stream begins again
from that point. Streams not updated for ``expiration`` seconds are forgotten, and at most ``max_streams`` are
held: past that, new delta streams are dropped (and counted) rather than growing without bound.

Streams are kept in the order they were last updated (an updated stream moves to the end of the dict), so the
expired ones are at the front and forgetting them costs what is forgotten, not what is held.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

__all__ = ["CumulativeState"]


@dataclass(slots=True)
class _Stream:
    start_ns: int
    last_ns: int
    value: float
    counts: list[float]
    bounds: tuple[float, ...]
    count: float
    sum: float | None
    touched: float


class CumulativeState:
    def __init__(self, *, max_streams: int = 100_000, expiration: float = 600.0) -> None:
        self.max_streams = max_streams
        self.expiration = expiration
        self._streams: dict[Hashable, _Stream] = {}
        #: Points dropped: they started before their stream, or the stream limit was reached.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._streams)

    def _stream(self, key: Hashable, start_ns: int, time_ns: int) -> tuple[_Stream | None, bool]:
        """(stream, fresh): the stream to add to, or a fresh one that the caller fills; (None, _) to drop."""
        stream = self._streams.get(key)
        now = time.monotonic()
        if stream is None:
            if len(self._streams) >= self.max_streams:
                self.expire(now)
                if len(self._streams) >= self.max_streams:
                    self.dropped += 1
                    return None, False
            stream = self._streams[key] = _Stream(start_ns, time_ns, 0.0, [], (), 0.0, None, now)
            return stream, True
        if start_ns < stream.start_ns:
            self.dropped += 1
            return None, False
        stream.touched = now
        del self._streams[key]  # to the end: the dict stays ordered by last update
        self._streams[key] = stream
        if start_ns != stream.last_ns:  # a gap or an overlap: the writer restarted
            stream.start_ns = start_ns
            stream.last_ns = time_ns
            return stream, True
        stream.last_ns = time_ns
        return stream, False

    def add_sum(self, key: Hashable, start_ns: int, time_ns: int, value: float) -> tuple[int, float] | None:
        """The cumulative (start, value) for a delta sum point, or None to drop it."""
        stream, fresh = self._stream(key, start_ns, time_ns)
        if stream is None:
            return None
        stream.value = value if fresh else stream.value + value
        return stream.start_ns, stream.value

    def add_histogram(self, key: Hashable, start_ns: int, time_ns: int, bounds: tuple[float, ...],
                      counts: list[float], count: float, total: float | None
                      ) -> tuple[int, list[float], float, float | None] | None:
        """The cumulative (start, bucket counts, count, sum) for a delta histogram point, or None to drop it.

        When the bucket bounds change, the new point starts the stream again (its buckets cannot be added).
        """
        stream, fresh = self._stream(key, start_ns, time_ns)
        if stream is None:
            return None
        if fresh or stream.bounds != bounds or len(stream.counts) != len(counts):
            stream.start_ns = start_ns if not fresh else stream.start_ns
            stream.bounds, stream.counts, stream.count, stream.sum = bounds, list(counts), count, total
        else:
            stream.counts = [a + b for a, b in zip(stream.counts, counts, strict=True)]
            stream.count += count
            stream.sum = None if total is None or stream.sum is None else stream.sum + total
        return stream.start_ns, list(stream.counts), stream.count, stream.sum

    def expire(self, now: float | None = None, limit: int = 0) -> int:
        """Forget streams not updated for ``expiration`` seconds, at most ``limit`` of them (0: all); returns how
        many were forgotten. A caller on the event loop passes a limit and calls again while it returns ``limit``."""
        if self.expiration <= 0:
            return 0
        cutoff = (time.monotonic() if now is None else now) - self.expiration
        stale: list[Hashable] = []
        for key, stream in self._streams.items():
            if stream.touched >= cutoff or (limit and len(stale) >= limit):
                break  # ordered by last update: every later stream is younger
            stale.append(key)
        for key in stale:
            del self._streams[key]
        return len(stale)
