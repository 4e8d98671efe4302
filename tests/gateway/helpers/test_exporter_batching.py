"""sending_queue as the Collector's exporterhelper has it today: batching by the queue's workers (in memory and
after a persistent queue), block_on_overflow, wait_for_result, an items sizer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway._host.telemetry import Telemetry
from gateway.component import ComponentID, Kind, Signal, count_items
from gateway.configtypes import decode, validate_tree
from gateway.errors import OverloadedError, PermanentError, RetryableError
from gateway.helpers.exporter import ExporterHelper, PartialSuccess, QueueConfig, RetryConfig
from gateway.testing import make_host, make_traces, settings_for
from plugins.extensions.file_storage.config import Config as StorageConfig
from plugins.extensions.file_storage.extension import FileStorage

NO_RETRY = RetryConfig(enabled=False)


class Backend:
    """Records the item count of every request; ``gate`` holds sends back while cleared."""

    def __init__(self, error: Exception | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.error = error

    async def send(self, batch: Any) -> PartialSuccess | None:
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        self.sizes.append(count_items(Signal.TRACES, batch))
        return None


def helper(backend: Backend, queue: dict[str, Any], telemetry: Telemetry | None = None,
           retry: RetryConfig = NO_RETRY) -> ExporterHelper:
    config = decode(QueueConfig(), queue)
    assert validate_tree(config) == []
    settings = settings_for(Kind.EXPORTER, "otlp", Signal.TRACES, telemetry or Telemetry())
    return ExporterHelper(settings, backend.send, timeout=5, queue=config, retry=retry, drain_timeout=5)


async def until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_queued_requests_are_joined_until_min_size() -> None:
    backend = Backend()
    exporter = helper(backend, {"num_consumers": 1, "batch": {"min_size": 10, "flush_timeout": "60s"}})
    await exporter.start(None)
    try:
        for _ in range(7):
            await exporter.consume(make_traces(2))
        await until(lambda: backend.sizes)
    finally:
        await exporter.shutdown()
    assert backend.sizes == [10, 4]  # 5 requests reach min_size; the last 2 go at shutdown


@pytest.mark.parametrize(("batch", "requests", "sizes"), [
    ({"min_size": 4, "max_size": 4}, [10], [4, 4, 2]),  # cut to max_size
    ({"min_size": 100, "flush_timeout": "20ms"}, [1, 2, 3], [6]),  # min_size never reached: flush_timeout sends
    ({"min_size": 1, "sizer": "bytes"}, [5, 5], [5, 5]),  # one request is already over one byte
])
async def test_batches_are_cut_to_max_size_and_flushed_after_flush_timeout(
        batch: dict[str, Any], requests: list[int], sizes: list[int]) -> None:
    backend = Backend()
    exporter = helper(backend, {"num_consumers": 1, "batch": {"flush_timeout": "60s", **batch}})
    await exporter.start(None)
    try:
        for spans in requests:
            await exporter.consume(make_traces(spans))
        await until(lambda: sum(backend.sizes) == sum(requests))
    finally:
        await exporter.shutdown()
    assert backend.sizes == sizes


async def test_with_storage_batching_takes_what_is_already_on_disk(tmp_path: Path) -> None:
    """Acknowledged requests are on disk before they wait for a batch: a stop while they wait loses none, and the
    next start sends them joined."""
    telemetry = Telemetry()
    host = make_host(telemetry)
    host.extensions[ComponentID("file_storage")] = FileStorage(
        settings_for(Kind.EXTENSION, "file_storage"), StorageConfig(directory=str(tmp_path)))
    queue = {"num_consumers": 1, "storage": "file_storage", "batch": {"min_size": 9, "flush_timeout": "60s"}}
    stopped = Backend(RetryableError("backend down"))  # refuses everything while the first exporter runs
    first = helper(stopped, queue, telemetry, retry=RetryConfig(initial_interval=0.01, max_interval=0.01,
                                                                 max_elapsed_time=0))
    await first.start(host)
    for _ in range(3):
        await first.consume(make_traces(3))  # acknowledged: on disk
    await first.shutdown()
    assert stopped.sizes == []
    backend = Backend()
    second = helper(backend, queue, telemetry)
    await second.start(host)
    try:
        await until(lambda: backend.sizes)
    finally:
        await second.shutdown()
    assert backend.sizes == [9]


async def test_block_on_overflow_makes_the_sender_wait_instead_of_refusing() -> None:
    backend = Backend()
    backend.gate.clear()
    # queue_size counts requests until they are sent: the one being sent and one waiting fill it.
    waiting = helper(backend, {"num_consumers": 1, "queue_size": 2, "block_on_overflow": True})
    refusing = helper(Backend(), {"num_consumers": 1, "queue_size": 1})
    await waiting.start(None)
    try:
        await waiting.consume(make_traces(1))  # taken by the worker, which waits on the backend
        await until(lambda: waiting.queue_size == 0)
        await waiting.consume(make_traces(1))  # fills the queue
        blocked = asyncio.create_task(waiting.consume(make_traces(1)))
        await asyncio.sleep(0.05)
        assert not blocked.done()
        backend.gate.set()
        await blocked
        await until(lambda: len(backend.sizes) == 3)
    finally:
        await waiting.shutdown()
    await refusing.start(None)
    try:
        refusing._queue.put(make_traces(1))  # type: ignore[union-attr]  # fills it before a worker takes it
        with pytest.raises(OverloadedError):
            await refusing.consume(make_traces(1))
    finally:
        await refusing.shutdown()


async def test_wait_for_result_answers_after_the_export_with_its_error() -> None:
    backend = Backend()
    backend.gate.clear()
    exporter = helper(backend, {"num_consumers": 1, "wait_for_result": True})
    await exporter.start(None)
    try:
        pending = asyncio.create_task(exporter.consume(make_traces(2)))
        await asyncio.sleep(0.05)
        assert not pending.done()  # queued, but not yet exported
        backend.gate.set()
        await pending
        assert backend.sizes == [2]
        backend.error = PermanentError("refused by the backend")
        with pytest.raises(PermanentError, match="refused by the backend"):
            await exporter.consume(make_traces(1))
    finally:
        await exporter.shutdown()


def test_invalid_queue_settings_are_reported() -> None:
    assert validate_tree(QueueConfig(storage="file_storage", wait_for_result=True)) == []
    config = decode(QueueConfig(), {"enabled": False, "batch": {"min_size": 10, "max_size": 5, "sizer": "requests"}})
    assert validate_tree(config) == [
        "batch::max_size: must be 0 (no limit) or >= min_size (10), got 5",
        "batch::sizer: must be items or bytes, got 'requests'",
        "batch: needs enabled: true (batches are joined by the queue's workers)"]
