"""The exporter helper in isolation: fake send functions, a real queue, real clocks with ms intervals."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal, count_items
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError, InvalidDataError, OverloadedError, PermanentError, RetryableError
from gateway.helpers.exporter import Backoff, ExporterHelper, PartialSuccess, QueueConfig, RetryConfig
from gateway.testing import make_traces, settings_for

FAST = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1.5, max_interval=0.05,
                   max_elapsed_time=5)


class FakeSend:
    """Records every attempt; the first ``failures`` attempts raise what ``error`` makes, then it succeeds."""

    def __init__(self, failures: int = 0, error: Callable[[], BaseException] = lambda: RetryableError("down"),
                 delay: float = 0.0, result: PartialSuccess | None = None) -> None:
        self.failures = failures
        self.error = error
        self.delay = delay
        self.result = result
        self.attempts: list[tuple[float, Any]] = []
        self.delivered: list[Any] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, batch: Any) -> PartialSuccess | None:
        self.attempts.append((time.monotonic(), batch))
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if len(self.attempts) <= self.failures:
            raise self.error()
        self.delivered.append(batch)
        return self.result


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


def helper(telemetry: Telemetry, send: FakeSend, *, queue: QueueConfig | None = None,
           retry: RetryConfig = FAST, timeout: float = 1.0, drain_timeout: float = 5.0) -> ExporterHelper:
    settings = settings_for(Kind.EXPORTER, "fake", Signal.TRACES, telemetry)
    return ExporterHelper(settings, send, timeout=timeout, queue=queue or QueueConfig(num_consumers=2),
                          retry=retry, drain_timeout=drain_timeout)


def metric(telemetry: Telemetry, name: str, **labels: str) -> float:
    return telemetry.registry.get_sample_value(name, {"exporter": "fake", **labels}) or 0.0


async def test_queue_full_refuses_with_overloaded_error_and_counts(telemetry: Telemetry) -> None:
    send = FakeSend()
    exporter = helper(telemetry, send, queue=QueueConfig(num_consumers=1, queue_size=2))
    await exporter.consume(make_traces(3))
    await exporter.consume(make_traces(3))
    assert metric(telemetry, "otelcol_exporter_queue_size", data_type="traces") == 2
    assert metric(telemetry, "otelcol_exporter_queue_capacity", data_type="traces") == 2
    with pytest.raises(OverloadedError, match="sending queue is full") as info:
        await exporter.consume(make_traces(4))
    assert info.value.retry_after == pytest.approx(1.0)
    assert metric(telemetry, "otelcol_exporter_enqueue_failed_spans_total") == 4
    await exporter.start(None)
    await exporter.shutdown()
    assert len(send.delivered) == 2
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 6
    assert metric(telemetry, "otelcol_exporter_queue_size", data_type="traces") == 0


async def test_consume_returns_before_the_send_finishes(telemetry: Telemetry) -> None:
    send = FakeSend()
    send.gate = asyncio.Event()
    exporter = helper(telemetry, send)
    await exporter.start(None)
    await exporter.consume(make_traces(1))
    await asyncio.sleep(0)
    assert not send.delivered
    send.gate.set()
    await exporter.shutdown()
    assert len(send.delivered) == 1


async def test_retries_until_success_and_nothing_is_lost_or_duplicated(telemetry: Telemetry) -> None:
    send = FakeSend(failures=3)
    exporter = helper(telemetry, send, queue=QueueConfig(num_consumers=1))
    batches = [make_traces(5) for _ in range(4)]
    await exporter.start(None)
    for batch in batches:
        await exporter.consume(batch)
    await exporter.shutdown()
    assert [id(b) for b in send.delivered] == [id(b) for b in batches]
    assert len(send.attempts) == 4 + 3
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 20
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 0
    assert metric(telemetry, "otelgw_exporter_retries_total", data_type="traces") == 3
    assert metric(telemetry, "otelgw_exporter_send_duration_seconds_count", data_type="traces") == 7


@pytest.mark.parametrize("error", [
    lambda: OSError("connection refused"),
    lambda: aiohttp.ClientConnectionError("reset"),
    lambda: TimeoutError(),
    lambda: RuntimeError("a bug in send"),
], ids=["OSError", "aiohttp", "TimeoutError", "RuntimeError"])
async def test_exceptions_that_are_not_consume_errors_are_retried(telemetry: Telemetry, error: Any) -> None:
    send = FakeSend(failures=2, error=error)
    exporter = helper(telemetry, send)
    await exporter.start(None)
    await exporter.consume(make_traces(2))
    await exporter.shutdown()
    assert len(send.attempts) == 3
    assert len(send.delivered) == 1


async def test_permanent_error_is_never_retried_and_is_logged(telemetry: Telemetry,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    send = FakeSend(failures=100, error=lambda: InvalidDataError("INVALID_ARGUMENT: span name too long"))
    exporter = helper(telemetry, send)
    await exporter.start(None)
    with caplog.at_level(logging.ERROR):
        await exporter.consume(make_traces(3))
        await exporter.shutdown()
    # Bisected down to single spans (3, then 2 and 1, then 1 and 1), every one refused, none retried.
    assert sorted(count_items(Signal.TRACES, batch) for _, batch in send.attempts) == [1, 1, 1, 2, 3]
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 3
    assert dropped(telemetry, "rejected") == 3
    assert metric(telemetry, "otelgw_exporter_retries_total", data_type="traces") == 0
    records = [r for r in caplog.records if "not retryable" in r.getMessage()]
    assert len(records) == 3
    assert all(r.error == "INVALID_ARGUMENT: span name too long" for r in records)  # type: ignore[attr-defined]
    assert all(r.dropped_items == 1 for r in records)  # type: ignore[attr-defined]


class RefusesBadSpans(FakeSend):
    """A destination that refuses, as permanently invalid, every request holding a span named ``bad``."""

    async def __call__(self, batch: Any) -> PartialSuccess | None:
        self.attempts.append((time.monotonic(), batch))
        if any(span.name == "bad" for span in spans_of(batch)):
            raise InvalidDataError("INVALID_ARGUMENT: invalid span")
        self.delivered.append(batch)
        return None


def spans_of(batch: Any) -> list[Any]:
    return [span for rs in batch.resource_spans for ss in rs.scope_spans for span in ss.spans]


def with_bad_spans(total: int, bad: set[int]) -> Any:
    batch = make_traces(total)
    for index, span in enumerate(spans_of(batch)):
        if index in bad:
            span.name = "bad"
    return batch


@pytest.mark.parametrize("queued", [True, False])
async def test_a_refused_batch_is_bisected_so_only_the_bad_items_are_dropped(telemetry: Telemetry,
                                                                             queued: bool) -> None:
    send = RefusesBadSpans()
    exporter = helper(telemetry, send, queue=QueueConfig(num_consumers=1) if queued else QueueConfig(enabled=False))
    await exporter.start(None)
    batch = with_bad_spans(600, bad={17, 420})
    await exporter.consume(batch)  # inline too: most of the batch got through, so the caller is not refused
    await exporter.shutdown()
    delivered = [span.span_id for b in send.delivered for span in spans_of(b)]
    expected = [span.span_id for span in spans_of(batch) if span.name != "bad"]
    assert sorted(delivered) == sorted(expected)  # every good span exactly once
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 598
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 2
    assert dropped(telemetry, "rejected") == 2
    assert len(send.attempts) < 50  # two searches of log2(600) depth, not one request per span


async def test_inline_caller_is_refused_when_no_item_got_through(telemetry: Telemetry) -> None:
    send = RefusesBadSpans()
    exporter = helper(telemetry, send, queue=QueueConfig(enabled=False))
    await exporter.start(None)
    with pytest.raises(PermanentError, match="invalid span"):
        await exporter.consume(with_bad_spans(4, bad={0, 1, 2, 3}))
    await exporter.shutdown()
    assert dropped(telemetry, "rejected") == 4


def dropped(telemetry: Telemetry, reason: str) -> float:
    value = telemetry.registry.get_sample_value(
        "otelgw_component_dropped_items_total", {"component": "fake", "otel_signal": "traces", "reason": reason})
    return value or 0.0


async def test_retry_after_from_the_server_is_the_minimum_wait(telemetry: Telemetry) -> None:
    send = FakeSend(failures=1, error=lambda: RetryableError("throttled", retry_after=0.2))
    exporter = helper(telemetry, send)
    await exporter.start(None)
    await exporter.consume(make_traces(1))
    await exporter.shutdown()
    (first, _), (second, _) = send.attempts
    assert second - first >= 0.19
    assert len(send.delivered) == 1


async def test_backoff_grows_between_attempts(telemetry: Telemetry) -> None:
    send = FakeSend(failures=3)
    retry = RetryConfig(initial_interval=0.02, randomization_factor=0, multiplier=2, max_interval=1,
                        max_elapsed_time=5)
    exporter = helper(telemetry, send, retry=retry)
    await exporter.start(None)
    await exporter.consume(make_traces(1))
    await exporter.shutdown()
    times = [t for t, _ in send.attempts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.019 and gaps[1] >= 0.039 and gaps[2] >= 0.079


async def test_max_elapsed_time_gives_up_and_counts(telemetry: Telemetry,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    send = FakeSend(failures=10**6)
    retry = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1, max_interval=0.01,
                        max_elapsed_time=0.3)
    exporter = helper(telemetry, send, retry=retry)
    await exporter.start(None)
    with caplog.at_level(logging.ERROR):
        await exporter.consume(make_traces(4))
        await asyncio.wait_for(exporter.shutdown(), 5)
    assert 2 <= len(send.attempts) <= 31  # at most one attempt per interval within max_elapsed_time
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 4
    assert metric(telemetry, "otelgw_exporter_retries_total", data_type="traces") == len(send.attempts) - 1
    assert any("No more retries left" in r.getMessage() for r in caplog.records)


async def test_retry_disabled_drops_after_the_first_failure(telemetry: Telemetry) -> None:
    send = FakeSend(failures=1)
    exporter = helper(telemetry, send, retry=RetryConfig(enabled=False))
    await exporter.start(None)
    await exporter.consume(make_traces(2))
    await exporter.shutdown()
    assert len(send.attempts) == 1
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 2


async def test_each_attempt_is_bounded_by_timeout(telemetry: Telemetry) -> None:
    send = FakeSend()
    calls = 0

    async def slow_first(batch: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(10)
        await send(batch)

    exporter = helper(telemetry, slow_first, timeout=0.05)  # type: ignore[arg-type]
    await exporter.start(None)
    await exporter.consume(make_traces(1))
    await asyncio.wait_for(exporter.shutdown(), 5)
    assert calls == 2
    assert len(send.delivered) == 1


async def test_partial_success_counts_rejected_items_as_failed_without_retry(
        telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    send = FakeSend(result=PartialSuccess(rejected=3, message="3 spans had no trace id"))
    exporter = helper(telemetry, send)
    await exporter.start(None)
    with caplog.at_level(logging.WARNING):
        await exporter.consume(make_traces(10))
        await exporter.shutdown()
    assert len(send.attempts) == 1
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 7
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 3
    record = next(r for r in caplog.records if "Partial success" in r.getMessage())
    assert record.error == "3 spans had no trace id"  # type: ignore[attr-defined]


async def test_shutdown_drains_everything_queued(telemetry: Telemetry) -> None:
    send = FakeSend(delay=0.002)
    exporter = helper(telemetry, send, queue=QueueConfig(num_consumers=3, queue_size=100))
    await exporter.start(None)
    batches = [make_traces(2) for _ in range(50)]
    for batch in batches:
        await exporter.consume(batch)
    await exporter.shutdown()
    assert sorted(map(id, send.delivered)) == sorted(map(id, batches))
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 100
    with pytest.raises(RetryableError, match="shutting down"):
        await exporter.consume(make_traces(1))


async def test_shutdown_is_bounded_when_the_destination_stays_down(telemetry: Telemetry) -> None:
    send = FakeSend(failures=10**6)
    retry = RetryConfig(initial_interval=0.01, randomization_factor=0, multiplier=1, max_interval=0.01,
                        max_elapsed_time=0)  # retry forever: only the drain deadline ends it
    exporter = helper(telemetry, send, queue=QueueConfig(num_consumers=2), retry=retry, drain_timeout=0.2)
    await exporter.start(None)
    for _ in range(5):
        await exporter.consume(make_traces(1))
    started = time.monotonic()
    await asyncio.wait_for(exporter.shutdown(), 5)
    assert time.monotonic() - started < 3
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 5
    assert exporter.queue_size == 0


async def test_shutdown_gives_up_on_a_retry_that_would_sleep_past_the_deadline(telemetry: Telemetry) -> None:
    send = FakeSend(failures=10**6, error=lambda: RetryableError("throttled", retry_after=60))
    exporter = helper(telemetry, send, drain_timeout=2)
    await exporter.start(None)
    await exporter.consume(make_traces(1))
    while not send.attempts:
        await asyncio.sleep(0.001)
    started = time.monotonic()
    await asyncio.wait_for(exporter.shutdown(), 5)
    assert time.monotonic() - started < 1.8  # well before the 2 s deadline: the retry cannot make it
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_shutdown_cancels_a_send_that_hangs(telemetry: Telemetry) -> None:
    send = FakeSend()
    send.gate = asyncio.Event()  # never set
    exporter = helper(telemetry, send, timeout=60, drain_timeout=0.1)
    await exporter.start(None)
    await exporter.consume(make_traces(2))
    await exporter.consume(make_traces(3))
    await asyncio.wait_for(exporter.shutdown(), 5)
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 5


async def test_shutdown_without_start_drops_and_counts_what_was_queued(telemetry: Telemetry) -> None:
    exporter = helper(telemetry, FakeSend())
    await exporter.consume(make_traces(2))
    await exporter.shutdown()
    await exporter.shutdown()  # idempotent
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 2


async def test_queue_disabled_sends_inline(telemetry: Telemetry) -> None:
    send = FakeSend(failures=1)
    exporter = helper(telemetry, send, queue=QueueConfig(enabled=False))
    await exporter.start(None)
    await exporter.consume(make_traces(2))
    assert len(send.delivered) == 1  # consume returned only after the retry succeeded
    assert metric(telemetry, "otelcol_exporter_sent_spans_total") == 2
    assert metric(telemetry, "otelcol_exporter_queue_capacity", data_type="traces") == 0
    await exporter.shutdown()


async def test_queue_disabled_raises_the_permanent_error(telemetry: Telemetry) -> None:
    send = FakeSend(failures=1, error=lambda: PermanentError("bad data"))
    exporter = helper(telemetry, send, queue=QueueConfig(enabled=False))
    with pytest.raises(PermanentError, match="bad data"):
        await exporter.consume(make_traces(1))
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 1


async def test_queue_disabled_raises_a_retryable_error_when_retries_run_out(telemetry: Telemetry) -> None:
    send = FakeSend(failures=10**6, error=lambda: OSError("connection refused"))
    retry = RetryConfig(initial_interval=0.01, randomization_factor=0, max_interval=0.01,
                        max_elapsed_time=0.05)
    exporter = helper(telemetry, send, queue=QueueConfig(enabled=False), retry=retry)
    with pytest.raises(RetryableError, match="OSError: connection refused") as info:
        await exporter.consume(make_traces(2))
    assert isinstance(info.value.__cause__, OSError)
    assert len(send.attempts) > 1
    assert metric(telemetry, "otelcol_exporter_send_failed_spans_total") == 2


def test_backoff_follows_the_collector_formula() -> None:
    fixed = Backoff(RetryConfig(initial_interval=1, randomization_factor=0, multiplier=1.5,
                                 max_interval=3))
    assert [fixed.next_delay() for _ in range(5)] == [1, 1.5, 2.25, 3, 3]
    jittered = Backoff(RetryConfig(initial_interval=1, randomization_factor=0.5, multiplier=1,
                                    max_interval=1))
    delays = [jittered.next_delay() for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert max(delays) - min(delays) > 0.5


def test_config_blocks_decode_collector_yaml() -> None:
    retry = decode(RetryConfig(), {"initial_interval": "100ms", "max_interval": "1m", "max_elapsed_time": 0,
                                   "randomization_factor": 0.2, "multiplier": 2})
    assert retry == RetryConfig(True, 0.1, 0.2, 2.0, 60.0, 0.0)
    queue = decode(QueueConfig(), {"num_consumers": 4, "queue_size": 50})
    assert queue == QueueConfig(True, 4, 50)
    assert validate_tree(RetryConfig()) == [] and validate_tree(QueueConfig()) == []
    with pytest.raises(ConfigError) as info:
        decode(RetryConfig(), {"jitter": 0.5})
    assert info.value.messages[0].startswith("jitter: unknown key; valid keys are: enabled, initial_interval")


def test_config_blocks_validate_with_exact_messages() -> None:
    retry = RetryConfig(initial_interval=0, randomization_factor=1.5, multiplier=0.5, max_interval=-1,
                        max_elapsed_time=0)
    assert validate_tree(retry) == [
        "initial_interval: must be > 0",
        "randomization_factor: must be between 0 and 1, got 1.5",
        "multiplier: must be >= 1, got 0.5",
        "max_interval: must be >= initial_interval",
    ]
    assert validate_tree(RetryConfig(initial_interval=10, max_interval=30, max_elapsed_time=5)) == [
        "max_elapsed_time: must be 0 (retry forever) or >= initial_interval"]
    assert validate_tree(RetryConfig(enabled=False, initial_interval=0)) == []
    assert validate_tree(QueueConfig(num_consumers=0, queue_size=0, storage="file_storage/", sizer="items")) == [
        "storage: invalid component id 'file_storage/': expected 'type' or 'type/name'",
        "sizer: items is not available with storage (the queue on disk counts requests or bytes); use requests "
        "or bytes",
        "num_consumers: must be >= 1, got 0",
        "queue_size: must be >= 1, got 0",
    ]


def test_backoff_waits_at_least_what_the_server_asked_for() -> None:
    backoff = Backoff(RetryConfig(initial_interval=1, randomization_factor=0, multiplier=2, max_interval=8))
    assert [backoff.next_delay(0.5), backoff.next_delay(7.0), backoff.next_delay(None)] == [1, 7.0, 4]
