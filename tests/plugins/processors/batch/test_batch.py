from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal, consume, count_items
from gateway.errors import OverloadedError, PermanentError, RetryableError
from gateway.testing import Sink, make_traces, settings_for
from plugins.processors.batch.config import Config
from plugins.processors.batch.factory import factory
from plugins.processors.batch.processor import BatchProcessor

from .batches import flatten, mixed, span_ids

LONG = 30.0  # a timeout that never fires within a test


class Downstream(Sink):
    """A sink that can hold every send at a gate, or fail every send with ``error``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.error: Exception | None = None
        self.calls = 0

    async def _arrive(self) -> None:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def consume_traces(self, batch: Any) -> None:
        await self._arrive()
        await super().consume_traces(batch)

    async def consume_metrics(self, batch: Any) -> None:
        await self._arrive()
        await super().consume_metrics(batch)

    async def consume_logs(self, batch: Any) -> None:
        await self._arrive()
        await super().consume_logs(batch)


def make(config: Config, sink: Any, signal: Signal = Signal.TRACES, name: str = "batch",
         telemetry: Telemetry | None = None) -> Any:
    create = factory.create_fn(signal)
    assert create is not None
    return create(settings_for(Kind.PROCESSOR, name, signal, telemetry), config, sink)


def sample(p: BatchProcessor, metric: str, **labels: str) -> float:
    registry = p.settings.telemetry.registry
    value = registry.get_sample_value(metric, {"processor": str(p.settings.id), **labels})
    return value or 0.0


def dropped(p: BatchProcessor, reason: str) -> float:
    """``otelgw_component_dropped_items_total`` of ``p`` for ``reason``."""
    value = p.settings.telemetry.registry.get_sample_value(
        "otelgw_component_dropped_items_total",
        {"component": str(p.settings.id), "otel_signal": p.signal.value, "reason": reason})
    return value or 0.0


def sizes(sink: Sink, signal: Signal = Signal.TRACES) -> list[int]:
    return [count_items(signal, b) for b in sink.batches[signal]]


async def eventually(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait until ``condition`` holds; the limit only guards against a hang, it is not what is tested."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.005)


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


def producers(p: Any, requests: list[Any], signal: Signal = Signal.TRACES) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(consume(p, signal, request)) for request in requests]


async def test_size_trigger_sends_once_enough_items_are_held() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=10, timeout=LONG), sink)
    requests = [make_traces(3) for _ in range(4)]
    waiting = producers(p, requests[:3])
    await settle()
    assert sizes(sink) == [] and p.pending_items == 9
    assert not any(task.done() for task in waiting)  # nobody is answered before their items are handed on
    await p.consume_traces(requests[3])
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert sizes(sink) == [12] and p.pending_items == 0
    assert span_ids(sink.batches[Signal.TRACES]) == span_ids(requests)
    assert sample(p, "otelcol_processor_batch_batch_size_trigger_send_total") == 1
    assert sample(p, "otelcol_processor_batch_batch_send_size_count") == 1
    assert sample(p, "otelcol_processor_batch_batch_send_size_sum") == 12
    assert sample(p, "otelcol_processor_incoming_items_total", otel_signal="traces") == 12
    assert sample(p, "otelcol_processor_outgoing_items_total", otel_signal="traces") == 12
    await p.shutdown()


async def test_timeout_trigger_sends_what_is_held() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=1000, timeout=0.02), sink)
    await asyncio.wait_for(asyncio.gather(*producers(p, [make_traces(3), make_traces(2)])), 5)
    assert sizes(sink) == [5]
    assert p.pending_items == 0
    assert sample(p, "otelcol_processor_batch_timeout_trigger_send_total") == 1
    assert sample(p, "otelcol_processor_batch_batch_size_trigger_send_total") == 0
    await asyncio.wait_for(p.consume_traces(make_traces(4)), 5)  # a new batch arms a new timer
    assert sizes(sink) == [5, 4]
    await p.shutdown()


@pytest.mark.parametrize("signal", list(Signal))
async def test_max_size_splits_preserving_items_and_order(signal: Signal) -> None:
    sink = Sink()
    p = make(Config(send_batch_size=7, send_batch_max_size=10, timeout=LONG), sink, signal)
    requests = [mixed(signal), mixed(signal)]
    total = sum(count_items(signal, r) for r in requests)
    waiting = []
    for request in requests:
        waiting.append(asyncio.create_task(consume(p, signal, request)))
        await settle()
    sent = sizes(sink, signal)
    assert all(n == 10 for n in sent)
    assert p.pending_items == total - sum(sent) < 7  # a tail below send_batch_size keeps waiting
    assert waiting[-1].done() == (p.pending_items == 0)  # and so does the producer whose items are in it
    await p.shutdown()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert sum(sizes(sink, signal)) == total
    assert all(n <= 10 for n in sizes(sink, signal))
    assert flatten(signal, sink.batches[signal]) == flatten(signal, requests)


async def test_a_refused_tail_reaches_the_producers_of_the_batch_it_was_split_from() -> None:
    sink = Downstream()
    p = make(Config(send_batch_size=7, send_batch_max_size=10, timeout=LONG), sink)
    task = asyncio.create_task(p.consume_traces(mixed(Signal.TRACES)))  # 26 spans: 10 + 10 sent, 6 held
    await eventually(lambda: sizes(sink) == [10, 10])
    assert p.pending_items == 6 and not task.done()
    sink.error = RetryableError("backend down")
    await p.shutdown()
    with pytest.raises(RetryableError, match="backend down"):
        await task


async def test_timeout_zero_sends_every_request_at_once_unchanged() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=1000, timeout=0), sink)
    request = make_traces(5)
    await p.consume_traces(request)
    assert sink.batches[Signal.TRACES] == [request]
    assert sink.batches[Signal.TRACES][0] is request  # passed on as is: no copy, no merge
    assert p.pending_items == 0


async def test_timeout_zero_still_splits_at_max_size() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=4, send_batch_max_size=4, timeout=0), sink, Signal.LOGS)
    request = mixed(Signal.LOGS)
    await p.consume_logs(request)
    assert sizes(sink, Signal.LOGS) == [4, 4, 4, 4, 4, 1]
    assert flatten(Signal.LOGS, sink.batches[Signal.LOGS]) == flatten(Signal.LOGS, [request])


async def test_send_batch_size_zero_sends_every_request() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=0, timeout=LONG), sink)
    await p.consume_traces(make_traces(3))
    assert sizes(sink) == [3]


async def test_shutdown_flushes_what_is_held_and_answers_its_producers() -> None:
    sink = Downstream()
    p = make(Config(send_batch_size=100, timeout=LONG), sink)
    requests = [make_traces(3), make_traces(4)]
    waiting = producers(p, requests)
    await settle()
    assert sizes(sink) == [] and not any(task.done() for task in waiting)
    await p.shutdown()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert sizes(sink) == [7]
    assert span_ids(sink.batches[Signal.TRACES]) == span_ids(requests)
    assert sample(p, "otelcol_processor_batch_timeout_trigger_send_total") == 0
    assert sample(p, "otelcol_processor_batch_batch_size_trigger_send_total") == 0
    await p.consume_traces(make_traces(2))  # after shutdown nothing is held back any more
    assert sizes(sink) == [7, 2]


async def test_shutdown_without_start_or_data() -> None:
    p = make(Config(), Sink())
    await p.shutdown()


async def test_empty_requests_are_dropped() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=1, timeout=LONG), sink)
    await p.consume_traces(ExportTraceServiceRequest())
    await p.consume_traces(make_traces(0))
    assert p.pending_items == 0
    await p.shutdown()
    assert sink.batches[Signal.TRACES] == []


async def test_incoming_batches_are_never_modified() -> None:
    sink = Sink()
    p = make(Config(send_batch_size=10, send_batch_max_size=10, timeout=LONG), sink)
    requests = [mixed(Signal.TRACES) for _ in range(3)]
    before = [r.SerializeToString() for r in requests]
    waiting = producers(p, requests)
    await settle()
    await p.shutdown()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert [r.SerializeToString() for r in requests] == before
    assert all(b is not r for b in sink.batches[Signal.TRACES] for r in requests)


async def test_concurrent_producers_lose_and_duplicate_nothing() -> None:
    sink = Downstream()
    p = make(Config(send_batch_size=20, send_batch_max_size=30, timeout=0.005), sink)
    sent: list[bytes] = []

    async def producer() -> None:
        for _ in range(10):
            request = make_traces(3)
            sent.extend(span_ids([request]))
            await p.consume_traces(request)
            await asyncio.sleep(0)

    await asyncio.gather(*(producer() for _ in range(20)))
    await p.shutdown()
    received = span_ids(sink.batches[Signal.TRACES])
    assert len(received) == len(sent) == 600
    assert sorted(received) == sorted(sent)
    assert all(n <= 30 for n in sizes(sink))
    assert sample(p, "otelcol_processor_outgoing_items_total", otel_signal="traces") == 600


async def test_every_producer_waits_until_its_batch_is_handed_on() -> None:
    sink = Downstream()
    sink.gate = asyncio.Event()
    p = make(Config(send_batch_size=5, timeout=LONG), sink)
    early = asyncio.create_task(p.consume_traces(make_traces(2)))
    filling = asyncio.create_task(p.consume_traces(make_traces(3)))
    await sink.entered.wait()  # the send is now blocked downstream
    await settle()
    assert not early.done() and not filling.done()
    sink.gate.set()
    await asyncio.wait_for(asyncio.gather(early, filling), 5)
    await p.shutdown()
    assert sizes(sink) == [5]


async def test_overload_downstream_reaches_every_producer_of_the_batch() -> None:
    sink = Downstream()
    sink.error = OverloadedError("queue full", retry_after=2.0)
    p = make(Config(send_batch_size=10, timeout=LONG), sink)
    early = asyncio.create_task(p.consume_traces(make_traces(4)))
    await settle()
    with pytest.raises(OverloadedError) as info:
        await p.consume_traces(make_traces(6))
    assert info.value.retry_after == 2.0
    with pytest.raises(OverloadedError) as early_info:
        await early
    assert early_info.value.retry_after == 2.0 and early_info.value is not info.value
    assert sample(p, "otelgw_processor_batch_send_failed_items_total", otel_signal="traces") == 10
    assert p.pending_items == 0
    assert dropped(p, "rejected") == 0  # every producer was asked to retry: nothing is lost


async def test_a_retryable_refusal_stops_the_remaining_chunks() -> None:
    sink = Downstream()
    sink.error = RetryableError("backend down")
    p = make(Config(send_batch_size=10, send_batch_max_size=10, timeout=LONG), sink)
    with pytest.raises(RetryableError):
        await p.consume_traces(make_traces(30))
    assert sink.calls == 1  # the producer retries all 30: sending the other chunks would duplicate them


async def test_a_permanent_refusal_reaches_the_producers(caplog: pytest.LogCaptureFixture) -> None:
    sink = Downstream()
    sink.error = PermanentError("bad data somewhere")
    p = make(Config(send_batch_size=5, timeout=LONG), sink)
    with pytest.raises(PermanentError, match="bad data somewhere"):
        await p.consume_traces(make_traces(5))
    assert sample(p, "otelgw_processor_batch_send_failed_items_total", otel_signal="traces") == 5
    assert dropped(p, "rejected") == 5
    assert p.settings.telemetry.root.dropped_items() == 5


async def test_a_bug_downstream_is_answered_as_retryable(caplog: pytest.LogCaptureFixture) -> None:
    sink = Downstream()
    sink.error = ZeroDivisionError("oops")
    p = make(Config(send_batch_size=5, timeout=LONG), sink)
    with caplog.at_level(logging.ERROR, logger="otelgw"), pytest.raises(RetryableError, match="ZeroDivisionError"):
        await p.consume_traces(make_traces(5))
    assert "its producers are asked to retry" in caplog.text


async def test_timer_send_errors_reach_the_producers() -> None:
    sink = Downstream()
    sink.error = RetryableError("exporter down")
    p = make(Config(send_batch_size=100, timeout=0.01), sink)
    with pytest.raises(RetryableError, match="exporter down"):
        await asyncio.wait_for(p.consume_traces(make_traces(3)), 5)
    assert sample(p, "otelgw_processor_batch_send_failed_items_total", otel_signal="traces") == 3
    await p.shutdown()


async def test_a_cancelled_producer_does_not_cancel_the_shared_send() -> None:
    sink = Downstream()
    sink.gate = asyncio.Event()
    p = make(Config(send_batch_size=5, timeout=LONG), sink)
    other = asyncio.create_task(p.consume_traces(make_traces(2)))  # another producer's items
    task = asyncio.create_task(p.consume_traces(make_traces(3)))
    await sink.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sink.gate.set()
    await asyncio.wait_for(other, 5)  # still answered, once its items are handed on
    await p.shutdown()
    assert sizes(sink) == [5]


async def test_a_slow_timer_send_holds_later_items_instead_of_piling_up_sends() -> None:
    sink = Downstream()
    sink.gate = asyncio.Event()
    p = make(Config(send_batch_size=100, timeout=0.01), sink)
    first = asyncio.create_task(p.consume_traces(make_traces(3)))
    await sink.entered.wait()  # the first timer send is blocked downstream
    second = asyncio.create_task(p.consume_traces(make_traces(4)))
    await asyncio.sleep(0.05)  # several timeouts pass while the first send is still in flight
    assert sink.calls == 1 and p.pending_items == 4
    sink.gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert sizes(sink) == [3, 4]
    await p.shutdown()


async def test_processors_sharing_a_registry_register_their_metrics_once() -> None:
    telemetry = Telemetry()
    first = make(Config(send_batch_size=1, timeout=LONG), Sink(), name="batch", telemetry=telemetry)
    second = make(Config(send_batch_size=1, timeout=LONG), Sink(), Signal.LOGS, name="batch/2",
                  telemetry=telemetry)
    await first.consume_traces(make_traces(2))
    await consume(second, Signal.LOGS, mixed(Signal.LOGS))
    text = telemetry.exposition().decode()
    assert 'otelcol_processor_batch_batch_size_trigger_send_total{processor="batch"} 1.0' in text
    assert 'otelcol_processor_batch_batch_size_trigger_send_total{processor="batch/2"} 1.0' in text
    assert 'otelcol_processor_batch_batch_send_size_sum{processor="batch/2"} 21.0' in text
    other = make(Config(), Sink())  # a fresh registry gets fresh metrics
    assert sample(other, "otelcol_processor_batch_batch_size_trigger_send_total") == 0


async def test_processor_exposes_only_its_signal() -> None:
    p = make(Config(), Sink(), Signal.METRICS)
    with pytest.raises(TypeError, match="BatchProcessor was created for metrics, not traces"):
        await p.consume_traces(make_traces(1))


async def test_serialized_requests_are_held_and_sent_as_the_bytes_they_are() -> None:
    """A ``WireBatch`` (tail_sampling's kept traces) handed to the batch processor is held as its bytes, joined with
    the requests it batches with (parsed ones are taken as their serialization) and sent on as the joined bytes to
    a consumer that takes bytes: nothing is parsed on the way. A split of an oversized one keeps every span."""
    from gateway import WireBatch

    class TakesBytes:
        def __init__(self) -> None:
            self.batches: list[WireBatch] = []

        async def consume_wire(self, batch: WireBatch) -> None:
            self.batches.append(batch)

        async def consume_traces(self, batch: Any) -> None:
            items = count_items(Signal.TRACES, batch)
            self.batches.append(WireBatch(Signal.TRACES, [batch.SerializeToString()], [items]))

    first, second, parsed = make_traces(3), make_traces(4), make_traces(5)
    wire = [WireBatch(Signal.TRACES, [r.SerializeToString()], [count_items(Signal.TRACES, r)]) for r in (first, second)]
    downstream = TakesBytes()
    p = make(Config(send_batch_size=12, timeout=LONG), downstream)
    await asyncio.gather(p.consume_wire(wire[0]), p.consume_wire(wire[1]), consume(p, Signal.TRACES, parsed))
    assert len(downstream.batches) == 1
    sent = downstream.batches[0]
    assert sent.items == 12
    assert sent.data == first.SerializeToString() + second.SerializeToString() + parsed.SerializeToString()
    assert sent._message is None  # never parsed on the way

    split = TakesBytes()
    p = make(Config(send_batch_size=0, send_batch_max_size=5, timeout=LONG), split)
    await p.consume_wire(WireBatch.join(Signal.TRACES, wire))
    assert [b.items for b in split.batches] == [5, 2]
    assert span_ids([ExportTraceServiceRequest.FromString(b.data) for b in split.batches]) == span_ids([first, second])
