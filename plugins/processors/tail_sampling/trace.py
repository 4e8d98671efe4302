"""One buffered trace (``TraceState``) and the read-only view policies decide on (``TraceView``).

A trace waits as a flat list of (envelope, run bytes) pairs plus a few numbers kept up to date on ingest: span
count, serialized size and, when a policy needs them, earliest start and latest end and which status codes its
spans have (read while splitting the request into runs, ``gateway.helpers.trace_runs``). Everything else a policy
may ask for (attributes, trace state) is answered from the bytes at decision time: first a substring test on the
serialized runs, which is C code and rules most traces out, then, only for traces that pass it, a decode of the
runs into messages, done once and shared by every policy that evaluates the trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import repeat
from operator import attrgetter, contains, sub
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

from gateway import STATUS_BITS, Envelope

__all__ = ["TraceState", "TraceView", "durations_ns", "may_contain", "span_counts", "status_bits", "trace_ids"]

#: Needles up to this long are searched with a compiled regex: CPython's substring search skips at most the
#: needle's length per step, so for a two-byte needle over a trace's ~6 KB ``re`` (a memchr on the first byte,
#: then a compare) is about 2.5 times faster; longer needles skip far enough that ``in`` wins.
_SHORT_NEEDLE = 3


@lru_cache(maxsize=256)
def _searcher(needle: bytes) -> Callable[[bytes], Any] | None:
    """``re.search`` for a short needle, None for a long one (searched with ``in``)."""
    return re.compile(re.escape(needle)).search if len(needle) <= _SHORT_NEEDLE else None


def _may_contain(parts: list[Any], needle: bytes, search: Callable[[bytes], Any] | None) -> bool:
    """``TraceView.may_contain`` on a state's ``parts``: the span runs (odd places), then the resources."""
    runs = parts[1::2]
    # map keeps the loops in C: this runs for most traces at every decision.
    if any(map(search, runs) if search is not None else map(contains, runs, repeat(needle))):
        return True
    return any(needle in envelope.resource_header for envelope in parts[::2])


class TraceState:
    """A trace waiting for its decision. ``parts`` alternates envelope and run bytes."""

    __slots__ = ("arrival", "codes", "decide_at", "end", "parts", "segments", "size", "span_count", "start",
                 "trace_id")

    def __init__(self, trace_id: bytes, arrival: float, decide_at: float) -> None:
        self.trace_id = trace_id
        self.arrival = arrival
        self.decide_at = decide_at
        self.parts: list[Any] = []
        self.span_count = 0
        self.size = 0
        self.start = 0
        self.end = 0
        #: The status codes of its spans as a run gives them (``trace_runs.Run``): bit c for code c; -1 once a run
        #: came without them.
        self.codes = 0
        #: Storage segments holding this trace's spans (with ``storage`` only), oldest first. The shared empty
        #: tuple until there is one: a list per trace would be one more object for the cycle collector to visit.
        self.segments: list[int] | tuple[()] = ()

    def add(self, envelope: Envelope, run: bytes, count: int, first: int, last: int, codes: int = -1) -> None:
        self.codes = -1 if codes < 0 or self.codes < 0 else self.codes | codes
        if self.span_count == 0 or first < self.start:
            self.start = first
        if last > self.end:
            self.end = last
        self.parts.append(envelope)
        self.parts.append(run)
        self.span_count += count
        self.size += len(run)

    def runs(self) -> list[tuple[Envelope, bytes]]:
        parts = self.parts
        if len(parts) == 2:  # all its spans came in one request, side by side: the common case, 4 times faster
            return [(parts[0], parts[1])]
        return list(zip(parts[::2], parts[1::2], strict=True))


class TraceView:
    """What a policy sees of one trace. Decodes lazily and at most once."""

    __slots__ = ("_resources", "_scopes", "_state", "composite_policy", "span_count", "trace_id")

    def __init__(self, state: TraceState) -> None:
        self._state = state
        self.trace_id = state.trace_id
        self.span_count = state.span_count
        self._scopes: list[Any] | None = None
        self._resources: list[Any] | None = None
        #: Set by a ``composite`` policy to the sub-policy that sampled the trace.
        self.composite_policy: str | None = None

    @property
    def size_bytes(self) -> int:
        """Serialized size of the trace's spans."""
        return self._state.size

    def duration_ns(self) -> int:
        """Latest end minus earliest start over all spans (tracked on ingest when a policy needs it)."""
        state = self._state
        if state.start or state.end:
            return max(0, state.end - state.start)
        spans = self.spans()
        if not spans:
            return 0
        return max(0, max(s.end_time_unix_nano for s in spans) - min(s.start_time_unix_nano for s in spans))

    def may_contain(self, needle: bytes) -> bool:
        """False when no span and no resource of the trace contains ``needle`` in its serialized form."""
        return _may_contain(self._state.parts, needle, _searcher(needle))

    def spans_may_contain(self, needle: bytes) -> bool:
        # map keeps the loop in C: this runs for most traces at every decision.
        search = _searcher(needle)
        if search is not None:
            return any(map(search, self._state.parts[1::2]))
        return any(map(contains, self._state.parts[1::2], repeat(needle)))

    def status_bits(self) -> int:
        """The status codes of the trace's spans, as recorded on ingest: bit ``STATUS_BITS[c]`` for code c (bit 8
        for a code outside 0-2); -1 when they were not recorded (then ask ``has_status``)."""
        return self._state.codes

    def has_status(self, code: int) -> bool:
        """True when some span has this status code (0 UNSET, 1 OK, 2 ERROR)."""
        codes, bit = self._state.codes, STATUS_BITS.get(code)
        if codes >= 0 and bit is not None:  # recorded on ingest
            return bool(codes & bit)
        return any(span.status.code == code for span in self.spans())

    def spans(self) -> list[Any]:
        """Every span of the trace, decoded (once)."""
        if self._scopes is None:
            self._scopes = [ScopeSpans.FromString(run) for run in self._state.parts[1::2]]
        return [span for scope in self._scopes for span in scope.spans]

    def resources(self) -> list[Any]:
        """The distinct resources the trace's spans came with, decoded (once per envelope)."""
        if self._resources is None:
            seen: dict[bytes, Any] = {}
            for envelope in self._envelopes():
                if envelope.resource_header not in seen:
                    seen[envelope.resource_header] = envelope.resource()
            self._resources = list(seen.values())
        return self._resources

    def _envelopes(self) -> list[Envelope]:
        return self._state.parts[::2]


# What a batched policy (``evaluate_many``) reads of many views at once: each a ``map`` that stays in C.
_codes = attrgetter("_state.codes")
_starts = attrgetter("_state.start")
_ends = attrgetter("_state.end")
_parts = attrgetter("_state.parts")
_trace_id = attrgetter("trace_id")
_span_count = attrgetter("span_count")


def status_bits(views: Sequence[TraceView]) -> list[int]:
    """``view.status_bits()`` of each view."""
    return list(map(_codes, views))


def durations_ns(views: Sequence[TraceView]) -> list[int]:
    """``view.duration_ns()`` of each view."""
    starts = list(map(_starts, views))
    ends = list(map(_ends, views))
    durations = list(map(sub, ends, starts))
    if 0 in starts or 0 in ends:  # a trace with neither recorded is measured on its spans, as duration_ns does
        for i, view in enumerate(views):
            if not starts[i] and not ends[i]:
                durations[i] = view.duration_ns()
    if durations and min(durations) < 0:
        durations = [max(0, d) for d in durations]
    return durations


def may_contain(views: Sequence[TraceView], needle: bytes) -> list[bool]:
    """``view.may_contain(needle)`` of each view."""
    search = _searcher(needle)
    return [_may_contain(parts, needle, search) for parts in map(_parts, views)]


def trace_ids(views: Sequence[TraceView]) -> list[bytes]:
    return list(map(_trace_id, views))


def span_counts(views: Sequence[TraceView]) -> list[int]:
    return list(map(_span_count, views))
