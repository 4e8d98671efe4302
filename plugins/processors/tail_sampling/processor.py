"""The tail sampling processor: buffers spans by trace in serialized form, decides per trace, releases kept traces.

Ingest (``consume_traces``) serializes the request once and splits it into per-trace runs of span bytes
(``wire.split_request``); each run joins its trace's ``TraceState`` or, when the trace was already decided,
follows the cached decision at once. Nothing is decoded on ingest beyond what the configured policies need
cheaply (start and end times for ``latency``). Ingest never awaits except to forward late spans of kept traces,
so the event loop itself serialises ingest and decisions and no lock is needed.

A timer decides every trace whose ``decision_wait`` (or ``decision_wait_after_root_received``, once a root span
arrived) has elapsed. A trace over ``maximum_trace_size_bytes`` is decided at once. The buffer is bounded by
``num_traces`` and ``maximum_buffer_size_bytes``: when full, the oldest waiting trace is evicted and counted as
dropped too early, or, with ``block_on_overflow``, requests that would start new traces are refused with
``OverloadedError`` (RESOURCE_EXHAUSTED + RetryInfo / HTTP 429) until decisions free room; a request is taken
whole or not at all, so a retry never duplicates spans.

Kept traces are re-assembled from their runs into fresh requests (``wire.assemble`` + one ``FromString``); the
incoming batches are never touched after ``consume_traces`` returns, hence ``mutates_data=False`` even though
kept spans get the ``tailsampling.policy`` attribute.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from itertools import compress, repeat
from operator import attrgetter, is_not, not_
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from gateway import (
    ComponentSettings,
    Envelope,
    EnvelopeTable,
    Host,
    OverloadedError,
    RetryableError,
    Signal,
    SkipBatchError,
    Storage,
    StorageUnavailable,
    TracesConsumer,
    WireBatch,
    assemble,
    count_items,
    hand_on,
    spanscan,
    split_request,
    stamp,
    wire_bytes,
)

from .caches import DecisionCache
from .config import Config
from .decide import Decider
from .metrics import tail_sampling_metrics
from .policies import Decision, build_policy, needs_status, needs_times
from .storage import DISCARDED, EVICTED, KEPT, Decided, TraceStorage
from .trace import TraceState, TraceView

__all__ = ["TailSamplingProcessor"]

#: Serialized span bytes per released request: large enough to amortise per-request costs, well under the 4 MiB
#: a gRPC server accepts by default.
RELEASE_CHUNK_BYTES = 1 << 20
#: Traces decided between two yields to the event loop, so a large decision round does not stall ingest.
DECISIONS_PER_SLICE = 2000
#: With storage, kept spans the next component refused are offered again at most this often (seconds).
RETRY_HELD_S = 0.5

POLICY_KEY = "tailsampling.policy"
COMPOSITE_POLICY_KEY = "tailsampling.composite_policy"
CACHED_DECISION_KEY = "tailsampling.cached_decision"

_trace_id = attrgetter("trace_id")
_span_count = attrgetter("span_count")
_size = attrgetter("size")

#: Kept spans on their way out, one per decided trace (or late run): its (envelope, run bytes) pairs, the tag
#: for the policy attributes, its span count and its bytes. A chunk sent on is whole releases, so it knows its count.
Release = tuple[list[tuple[Envelope, bytes]], Any, int, int]


class TailSamplingProcessor:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: TracesConsumer,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self._next = next_consumer
        self._clock = clock
        self._wall_clock = wall_clock
        name = str(settings.id)
        root = settings.telemetry.root
        self._incoming = root.processor_incoming.labels(name, Signal.TRACES.value)
        self._outgoing = root.processor_outgoing.labels(name, Signal.TRACES.value)
        self.metrics = metrics = tail_sampling_metrics(settings.telemetry.registry)
        self._m_new = metrics.new_trace_id_received.labels(name)
        self._m_too_early = metrics.trace_dropped_too_early.labels(name)
        self._m_too_large = metrics.traces_dropped_too_large.labels(name)
        self._m_late = {True: metrics.early_releases_from_cache_decision.labels(name, "true"),
                        False: metrics.early_releases_from_cache_decision.labels(name, "false")}
        self._m_late_age = metrics.late_span_age.labels(name)
        self._m_timer = metrics.decision_timer_latency.labels(name)
        self._m_traces = metrics.traces_on_memory.labels(name)
        self._m_spans = metrics.spans_on_memory.labels(name)
        self._m_bytes = metrics.bytes_on_memory.labels(name)
        self._m_refused = metrics.refused_spans.labels(name)
        self._m_send_failed = metrics.send_failed_spans.labels(name)
        # otelgw_component_dropped_items_total: every span this processor lets go of, by reason
        dropped = settings.telemetry.dropped
        self._d_not_sampled = dropped("not_sampled", Signal.TRACES)
        self._not_sampled_spans = 0  # decided not sampled since the last _flush_counts
        self._d_evicted = dropped("evicted", Signal.TRACES)
        self._d_shutdown = dropped("shutdown", Signal.TRACES)
        self._d_send_failed = dropped("send_failed", Signal.TRACES)
        self._m_storage = metrics.storage_bytes.labels(name)
        self._decider = Decider([(build_policy(p, wall_clock), p.type == "drop") for p in config.policies],
                                config.sample_on_first_match, name, metrics, self.logger)
        self._want_times = any(needs_times(p) for p in config.policies)
        self._want_status = any(needs_status(p) for p in config.policies)
        self._wait = config.decision_wait
        self._root_wait = config.decision_wait_after_root_received
        waits = [w for w in (self._wait, self._root_wait) if w > 0]
        #: How often the timer looks for due traces: a tenth of the shortest wait, between 5 ms and 1 s.
        self.tick = min(1.0, max(0.005, min(waits) / 10))
        self._pending: dict[bytes, TraceState] = {}
        self._order: deque[TraceState] = deque()  # arrival order; entries decided early are skipped lazily
        self._early: deque[tuple[float, TraceState]] = deque()
        cache = config.decision_cache
        self._sampled = DecisionCache(cache.sampled_cache_size or config.num_traces)
        self._not_sampled = DecisionCache(cache.non_sampled_cache_size or config.num_traces)
        self._envelopes = EnvelopeTable()
        self._attributes: dict[Any, bytes] = {}
        self.buffered_spans = 0
        self.buffered_bytes = 0
        self._timer: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._stopped = False
        #: The write-ahead storage (``storage``), opened at start; None keeps everything in memory only.
        self._storage: TraceStorage | None = None
        #: With storage: kept spans the next component refused (retryably), with the decisions that wait for them.
        self._held: list[tuple[list[Release], list[Decided]]] = []
        self._held_retry_at = 0.0

    @property
    def pending_traces(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: Host) -> None:
        if self.config.storage and self._storage is None:
            self._storage = self._open_storage(host)
            await self._recover()
        self._timer = asyncio.get_running_loop().create_task(self._run_timer())

    def _open_storage(self, host: Host) -> TraceStorage:
        extension = host.extension(self.config.storage or "", Storage, "storage")
        directory, fsync = extension.queue_directory(f"processor_{self.settings.id}")
        return TraceStorage(directory, fsync=fsync, max_bytes=self.config.storage_max_bytes, logger=self.logger)

    async def _recover(self) -> None:
        """Replay the storage: waiting spans rejoin their traces (first arrival as persisted), decisions refill
        the caches; traces whose wait is over are decided by the first timer round."""
        storage = self._storage
        assert storage is not None
        replay = storage.open()
        name = str(self.settings.id)
        self.metrics.storage_dropped_records.labels(name).inc(replay.dropped_records)
        self.metrics.storage_dropped_bytes.labels(name).inc(replay.dropped_bytes)
        now, wall = self._clock(), self._wall_clock()
        for decided_wall, trace_id, outcome, policy, composite in replay.decisions:
            decided_at = now - max(0.0, wall - decided_wall)
            if outcome == KEPT:
                self._sampled.put(trace_id, (policy, composite, decided_at))
            elif outcome == DISCARDED:
                self._not_sampled.put(trace_id, decided_at)
        last_decision = replay.last_decision
        pending, limit = self._pending, self.config.maximum_trace_size_bytes
        oversized: dict[bytes, TraceState] = {}
        spans = 0
        for record_id, segment, arrived_wall, body in [*replay.spans, *storage.take_over_adopted()]:
            arrival = now - max(0.0, wall - arrived_wall)
            request = ExportTraceServiceRequest.FromString(body) if self._want_times or self._want_status else None
            for resource_header, scope_header, runs in split_request(body, request, self._want_times,
                                                                     self._root_wait > 0, self._want_status):
                envelope = self._envelopes.get(resource_header, scope_header)
                for trace_id, run, count, first, last, root, codes in runs:
                    if last_decision.get(trace_id, -1) > record_id:
                        continue  # decided after this record was written: released (or dropped) back then
                    state = pending.get(trace_id)
                    if state is None:
                        state = TraceState(trace_id, arrival, arrival + self._wait)
                        pending[trace_id] = state
                        self._order.append(state)
                    self._add(state, envelope, run, count, first, last, root, codes, arrival, segment)
                    spans += count
                    if limit and state.size > limit:
                        oversized[trace_id] = state
        storage.recovered()
        if pending:
            self.logger.info("tail_sampling: recovered %d waiting traces (%d spans) from storage", len(pending),
                             spans, extra={"directory": str(storage.directory)})
        retired: list[Decided] = []
        releases = self._decide_oversized(list(oversized.values()), now, retired) if oversized else []
        failed: list[Release] = []
        if releases:
            await self._release(releases, failed)
        self._evict_to_fit(retired)
        self._settle(failed, retired)
        self._update_gauges()

    def _add(self, state: TraceState, envelope: Envelope, run: bytes, count: int, first: int, last: int,
             root: bool, codes: int, now: float, segment: int) -> None:
        state.add(envelope, run, count, first, last, codes)
        self.buffered_spans += count
        self.buffered_bytes += len(run)
        if root and self._root_wait > 0 and now + self._root_wait < state.decide_at:
            state.decide_at = now + self._root_wait
            self._early.append((state.decide_at, state))
        if segment >= 0 and (not state.segments or state.segments[-1] != segment):
            if state.segments:
                state.segments.append(segment)  # type: ignore[union-attr]
            else:
                state.segments = [segment]
            assert self._storage is not None
            self._storage.keep_segment(segment)

    async def shutdown(self) -> None:
        """Stop the timer (letting a round in flight finish), then decide or drop what is still waiting."""
        self._stopped = True
        if self._timer is not None:
            self._stop.set()
            await self._timer
            self._timer = None
        states = self._take_all()
        if self._storage is not None and not self.config.drop_pending_traces_on_shutdown:
            if states:  # their spans are on disk: they resume waiting after the next start
                self.logger.info("%d traces still waiting for a decision stay in storage for the next start",
                                 len(states), extra={"spans": sum(s.span_count for s in states)})
            for state in states:
                self._forget(state)
        elif self.config.drop_pending_traces_on_shutdown:
            if states:
                self.logger.info("dropped %d traces still waiting for a decision at shutdown", len(states),
                                 extra={"spans": sum(s.span_count for s in states)})
            for state in states:
                self._d_shutdown.inc(state.span_count)
                self._forget(state)
            if self._storage is not None:
                self._storage.retire(((s.trace_id, EVICTED, "", None, s.segments) for s in states),
                                     self._wall_clock())
        else:
            await self._decide(states, self._clock())
        self._update_gauges()
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    async def _run_timer(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick)
            if self._stop.is_set():
                return
            try:
                await self._retry_held()
                await self.decide_due()
            except Exception:  # a bug must not stop the timer: traces would wait forever
                self.logger.exception("tail sampling decision round failed")

    # ------------------------------------------------------------------ ingest

    def _runs(self, raw: bytes | None, message: Callable[[], ExportTraceServiceRequest],
              ) -> tuple[bytes, list[tuple[bytes, bytes, list[Any]]]]:
        """The request's bytes and its per-trace runs. ``raw``: the bytes it was received as, if known;
        ``message``: gives the request parsed (called only when needed). The received bytes serve when the sender
        encoded every span with its trace id first, as every OTLP SDK does; otherwise (a run without a trace id)
        the request is serialized once, which puts it first."""
        want_times, want_root, want_status = self._want_times, self._root_wait > 0, self._want_status
        if raw is not None:
            scopes = split_request(raw, None if spanscan is not None else message(), want_times, want_root,
                                   want_status)
            if all(run[0] for _, _, runs in scopes for run in runs):
                return raw, scopes
        batch = message()
        raw = batch.SerializeToString()
        return raw, split_request(raw, batch, want_times, want_root, want_status)

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        spans = count_items(Signal.TRACES, batch)
        if spans == 0:
            return
        self._incoming.inc(spans)
        await self._ingest(spans, *self._runs(wire_bytes(batch), lambda: batch))

    async def consume_wire(self, batch: WireBatch) -> None:
        """A request as bytes (the otlp receiver's, or the batch processor's): split without a parse."""
        if batch.items == 0:
            return
        self._incoming.inc(batch.items)
        await self._ingest(batch.items, *self._runs(batch.data, batch.message))

    async def _ingest(self, spans: int, raw: bytes, scopes: list[tuple[bytes, bytes, list[Any]]]) -> None:
        if self.config.block_on_overflow:
            self._check_room(scopes, spans)
        segment = self._write_ahead(raw, scopes, spans) if self._storage is not None else -1
        now = self._clock()
        releases: list[Release] = []
        oversized: dict[bytes, TraceState] = {}
        pending, limit = self._pending, self.config.maximum_trace_size_bytes
        new_traces = 0
        for resource_header, scope_header, runs in scopes:
            envelope = self._envelopes.get(resource_header, scope_header)
            for trace_id, run, count, first, last, root, codes in runs:
                state = pending.get(trace_id)
                if state is None:
                    if self._follow_decision(trace_id, envelope, run, count, now, releases):
                        continue
                    state = TraceState(trace_id, now, now + self._wait)
                    pending[trace_id] = state
                    self._order.append(state)
                    new_traces += 1
                self._add(state, envelope, run, count, first, last, root, codes, now, segment)
                if limit and state.size > limit:
                    oversized[trace_id] = state
        if new_traces:
            self._m_new.inc(new_traces)
        retired: list[Decided] | None = [] if self._storage is not None else None
        if oversized:
            releases.extend(self._decide_oversized(list(oversized.values()), now, retired))
        if not self.config.block_on_overflow:
            self._evict_to_fit(retired)
        self._update_gauges()
        failed: list[Release] | None = [] if retired is not None else None
        if releases:
            await self._release(releases, failed)
        self._settle(failed, retired)
        if self._stopped:  # arrived after shutdown began: nothing will decide it later
            await self._decide(self._take_all(), now)

    def _write_ahead(self, raw: bytes, scopes: list[tuple[bytes, bytes, list[Any]]], spans: int) -> int:
        """Write the spans of this request that will wait for a decision; returns their segment (-1: none).

        Runs of traces already decided follow their decision at once and are not written. Refuses the whole
        request, retryably, at ``storage_max_bytes`` or when the write fails; nothing of it is buffered then.
        """
        storage = self._storage
        assert storage is not None
        pending, sampled, not_sampled = self._pending, self._sampled, self._not_sampled
        waiting: list[tuple[Envelope, bytes]] = []
        following = False
        for resource_header, scope_header, runs in scopes:
            envelope = None
            for run in runs:
                trace_id = run[0]
                if trace_id in pending or (trace_id not in sampled and trace_id not in not_sampled):
                    if envelope is None:
                        envelope = self._envelopes.get(resource_header, scope_header)
                    waiting.append((envelope, run[1]))
                else:
                    following = True
        if not waiting:
            return -1
        body = assemble(waiting) if following else raw
        if pending and storage.would_overflow(len(body)):
            self._m_refused.inc(spans)
            raise OverloadedError(
                f"tail_sampling storage is full ({storage.log.disk_bytes} of storage_max_bytes "
                f"{self.config.storage_max_bytes} bytes); retry after decisions free room",
                retry_after=min(self._wait, 5.0))
        try:
            return storage.write_spans(body, self._wall_clock())
        except StorageUnavailable:
            self._m_refused.inc(spans)
            raise

    def _follow_decision(self, trace_id: bytes, envelope: Envelope, run: bytes, count: int, now: float,
                         releases: list[Release]) -> bool:
        """Apply the cached decision of an already decided trace to a late run; False when there is none."""
        kept = self._sampled.get(trace_id)
        if kept is not None:
            policy, composite, decided_at = kept
            releases.append(([(envelope, run)], self._tag(policy, composite, cached=True), count, len(run)))
        else:
            decided_at = self._not_sampled.get(trace_id)
            if decided_at is None:
                return False
            self._d_not_sampled.inc(count)
        self._m_late[kept is not None].inc(count)
        self._m_late_age.observe(now - decided_at)
        return True

    def _check_room(self, scopes: list[tuple[bytes, bytes, list[Any]]], spans: int) -> None:
        """With block_on_overflow: refuse the whole request if its new traces or bytes do not fit."""
        pending = self._pending
        if not pending:
            return  # an empty buffer takes any request, so one larger than the buffer cannot block forever
        new: set[bytes] = set()
        incoming = 0
        for _, _, runs in scopes:
            for run in runs:
                trace_id = run[0]
                incoming += len(run[1])
                if trace_id not in pending and trace_id not in self._sampled and trace_id not in self._not_sampled:
                    new.add(trace_id)
        budget = self.config.maximum_buffer_size_bytes
        if len(pending) + len(new) <= self.config.num_traces and not (
                budget and self.buffered_bytes + incoming > budget):
            return
        self._m_refused.inc(spans)
        oldest = next((s for s in self._order if pending.get(s.trace_id) is s), None)
        wait = (oldest.arrival + self._wait - self._clock()) if oldest is not None else self.tick
        raise OverloadedError(
            f"tail_sampling buffer is full ({len(pending)} traces, {self.buffered_bytes} bytes waiting); retry "
            f"after decisions free room", retry_after=min(self._wait, max(self.tick, wait)))

    def _evict_to_fit(self, retired: list[Decided] | None = None) -> None:
        budget = self.config.maximum_buffer_size_bytes
        pending, order = self._pending, self._order
        evicted = 0
        while order and (len(pending) > self.config.num_traces or (budget and self.buffered_bytes > budget)):
            state = order.popleft()
            if pending.get(state.trace_id) is not state:
                continue
            del pending[state.trace_id]
            self._d_evicted.inc(state.span_count)
            self._forget(state)
            if retired is not None:
                retired.append((state.trace_id, EVICTED, "", None, state.segments))
            evicted += 1
        if evicted:
            self._m_too_early.inc(evicted)

    def _decide_oversized(self, states: list[TraceState], now: float,
                          retired: list[Decided] | None = None) -> list[Release]:
        releases: list[Release] = []
        for state in states:
            if self._pending.get(state.trace_id) is not state:
                continue
            del self._pending[state.trace_id]
            if self._decide_one(state, now, releases, retired) is not Decision.SAMPLED:
                self._m_too_large.inc()
        self._flush_counts()
        return releases

    # ------------------------------------------------------------------ decisions

    async def decide_due(self, now: float | None = None) -> None:
        """Decide every trace whose wait is over at ``now`` (default: the clock); the timer calls this."""
        started = time.perf_counter()
        now = self._clock() if now is None else now
        pending, due = self._pending, []
        early = self._early
        while early and early[0][0] <= now:
            state = early.popleft()[1]
            if pending.get(state.trace_id) is state:
                del pending[state.trace_id]
                due.append(state)
        # The head of the arrival queue up to the first trace still waiting: traces whose wait is over, and entries
        # of traces that left the buffer already (decided early, evicted), skipped. Counted first, then taken off
        # in bulk: one cheap test per trace in the loop.
        order, wait = self._order, self._wait
        head = 0
        for state in order:
            if state.arrival + wait > now and pending.get(state.trace_id) is state:
                break
            head += 1
        popleft = order.popleft
        taken = [popleft() for _ in range(head)]
        taken = [state for state in taken if pending.get(state.trace_id) is state]
        for state in taken:
            del pending[state.trace_id]
        due.extend(taken)
        await self._decide(due, now)
        self._update_gauges()
        self._m_timer.observe((time.perf_counter() - started) * 1000)

    async def _decide(self, states: list[TraceState], now: float) -> None:
        for start in range(0, len(states), DECISIONS_PER_SLICE):
            releases: list[Release] = []
            retired: list[Decided] | None = [] if self._storage is not None else None
            self._decide_slice(states[start:start + DECISIONS_PER_SLICE], now, releases, retired)
            self._flush_counts()
            failed: list[Release] | None = [] if self._storage is not None else None
            if releases:
                await self._release(releases, failed)
            elif start + DECISIONS_PER_SLICE < len(states):
                await asyncio.sleep(0)
            self._settle(failed, retired)  # kept spans are with the next component now (or held for a retry)

    def _decide_one(self, state: TraceState, now: float, releases: list[Release],
                    retired: list[Decided] | None = None) -> Decision:
        """Decide one trace taken out of the buffer: SAMPLED, or NOT_SAMPLED (dropped ones too)."""
        if self._decide_slice([state], now, releases, retired):
            return Decision.SAMPLED
        return Decision.NOT_SAMPLED

    def _decide_slice(self, states: list[TraceState], now: float, releases: list[Release],
                      retired: list[Decided] | None) -> int:
        """Decide traces taken out of the buffer, all at once (``Decider.decide_all``): remember each decision,
        queue the kept spans in ``releases`` and, with storage, every decision in ``retired`` (in trace order).
        Returns how many were kept."""
        views = list(map(TraceView, states))
        chosen = self._decider.decide_all(views)
        is_kept = list(map(is_not, chosen, repeat(None)))
        kept = is_kept.count(True)
        if kept:
            entries = []
            for state, view, policy in compress(zip(states, views, chosen, strict=True), is_kept):
                name, composite = policy.name, view.composite_policy  # type: ignore[union-attr]
                releases.append((state.runs(), self._tag(name, composite, cached=False), state.span_count,
                                 state.size))
                entries.append((state.trace_id, (name, composite, now)))
            self._sampled.put_many(entries)
        discarded = list(compress(states, map(not_, is_kept))) if kept else states
        if discarded:
            self._not_sampled.put_many(zip(map(_trace_id, discarded), repeat(now)))
            self._not_sampled_spans += sum(map(_span_count, discarded))  # published per slice (_flush_counts)
        if retired is not None:
            retired.extend([(s.trace_id, KEPT, p.name, v.composite_policy, s.segments) if p is not None
                            else (s.trace_id, DISCARDED, "", None, s.segments)
                            for s, v, p in zip(states, views, chosen, strict=True)])
        self._forget_all(states)
        return kept

    def _flush_counts(self) -> None:
        """Publish what the decisions since the last flush counted: per policy, and the spans not sampled."""
        self._decider.flush_metrics()
        if self._not_sampled_spans:
            self._d_not_sampled.inc(self._not_sampled_spans)
            self._not_sampled_spans = 0

    def _forget(self, state: TraceState) -> None:
        self._forget_all([state])

    def _forget_all(self, states: list[TraceState]) -> None:
        self.buffered_spans -= sum(map(_span_count, states))
        self.buffered_bytes -= sum(map(_size, states))
        for state in states:
            state.parts = []  # stale deque entries may keep the state object alive; never its bytes

    def _take_all(self) -> list[TraceState]:
        states = list(self._pending.values())
        self._pending.clear()
        self._order.clear()
        self._early.clear()
        return states

    # ------------------------------------------------------------------ release

    def _tag(self, policy: str, composite: str | None, cached: bool) -> Any:
        return (policy, composite, cached) if self.config.record_policy else None

    def _suffix(self, tag: tuple[str, str | None, bool]) -> bytes:
        """The serialized attributes a kept span gets for ``tag``, built once per distinct tag."""
        suffix = self._attributes.get(tag)
        if suffix is None:
            policy, composite, cached = tag
            attributes = [KeyValue(key=POLICY_KEY, value=AnyValue(string_value=policy))]
            if composite:
                attributes.append(KeyValue(key=COMPOSITE_POLICY_KEY, value=AnyValue(string_value=composite)))
            if cached:
                attributes.append(KeyValue(key=CACHED_DECISION_KEY, value=AnyValue(bool_value=True)))
            suffix = Span(attributes=attributes).SerializeToString()
            self._attributes[tag] = suffix
        return suffix

    async def _release(self, items: list[Release], failed: list[Release] | None = None) -> None:
        chunk: list[Release] = []
        size = 0
        for item in items:
            chunk.append(item)
            size += item[3]
            if size >= RELEASE_CHUNK_BYTES:
                await self._send(chunk, failed)
                chunk, size = [], 0
        if chunk:
            await self._send(chunk, failed)

    async def _send(self, chunk: list[Release], failed: list[Release] | None = None) -> None:
        """Pass kept spans on. With ``failed`` (storage), a retryable refusal puts the chunk there to be sent
        again later; the spans stay in storage until then."""
        data = assemble((envelope, run if tag is None else stamp(run, self._suffix(tag)))
                        for runs, tag, _, _ in chunk for envelope, run in runs)
        spans = sum(release[2] for release in chunk)
        try:
            # As bytes: the batch processor and the exporters take them as they are; anything else gets the parse.
            await hand_on(self._next, WireBatch(Signal.TRACES, [data], [spans]))
        except SkipBatchError:
            pass
        except RetryableError as exc:
            if failed is None:
                self._dropped(spans, exc)
                return
            failed.extend(chunk)
            if not self._held:
                self.logger.warning("the next component refused %d sampled spans for now; they stay in storage and "
                                    "are sent again: %s", spans, exc, extra={"error_type": type(exc).__name__})
            return
        except Exception as exc:  # the traces were decided and cannot be buffered again: count and log
            self._dropped(spans, exc)
            return
        self._outgoing.inc(spans)

    async def _retry_held(self) -> None:
        """Send again the kept spans the next component refused (storage only), at most every RETRY_HELD_S."""
        now = self._clock()
        if not self._held or now < self._held_retry_at:
            return
        self._held_retry_at = now + RETRY_HELD_S
        held, self._held = self._held, []
        for chunks, retired in held:
            failed: list[Release] = []
            await self._release(chunks, failed)
            if failed:
                self._held.append((failed, retired))
            elif self._storage is not None:
                self._storage.retire(retired, self._wall_clock())

    def _settle(self, failed: list[Release] | None, retired: list[Decided] | None) -> None:
        """After a release: record the decisions and free storage, or hold both while kept spans wait."""
        if self._storage is None:
            return
        if failed:
            self._held.append((failed, retired or []))
        elif retired:
            self._storage.retire(retired, self._wall_clock())

    def _dropped(self, spans: int, exc: Exception) -> None:
        """The traces were decided and cannot be buffered again: count and log."""
        self._outgoing.inc(spans)
        self._m_send_failed.inc(spans)
        self._d_send_failed.inc(spans)
        self.logger.warning("dropped %d sampled spans: the next component refused them: %s", spans, exc,
                            extra={"error_type": type(exc).__name__})

    def _update_gauges(self) -> None:
        self._m_traces.set(len(self._pending))
        self._m_spans.set(self.buffered_spans)
        self._m_bytes.set(self.buffered_bytes)
        if self._storage is not None:
            self._m_storage.set(self._storage.log.disk_bytes)
