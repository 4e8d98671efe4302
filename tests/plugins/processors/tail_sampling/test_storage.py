"""tail_sampling with ``storage``: waiting spans and decisions are written ahead and recovered by a new processor.

A "crash" here is a processor abandoned without shutdown (its files closed as SIGKILL would); the process-level
SIGKILL tests are in tests/test_durability.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.component import ComponentID, Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError, OverloadedError, RetryableError
from gateway.helpers.walog import StorageUnavailable
from gateway.host import Host
from gateway.testing import make_host, settings_for
from plugins.extensions.file_storage.config import Config as StorageConfig
from plugins.extensions.file_storage.extension import FileStorage
from plugins.processors.tail_sampling.factory import factory
from plugins.processors.tail_sampling.processor import TailSamplingProcessor

from .test_processor import Clock, Downstream
from .traces import attribute, span, spans_of, trace

sys.path.insert(0, str(Path(__file__).parents[4]))
from gwproc import tmpfs

KEEP_ERRORS = [{"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}]


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def host_with_storage(directory: Path) -> Host:
    host = make_host()
    storage = FileStorage(settings_for(Kind.EXTENSION, "file_storage/ts"), StorageConfig(directory=str(directory)))
    host.extensions[ComponentID.parse("file_storage/ts")] = storage
    return host


async def started(host: Host, clock: Clock, wall: Wall, sink: Any = None,
                  **overrides: Any) -> tuple[TailSamplingProcessor, Downstream]:
    config = decode(factory.create_default_config(),
                    {"policies": KEEP_ERRORS, "decision_wait": "10s", "storage": "file_storage/ts", **overrides})
    assert validate_tree(config) == []
    sink = sink or Downstream()
    processor = TailSamplingProcessor(settings_for(Kind.PROCESSOR, "tail_sampling", Signal.TRACES), config, sink,
                                      clock=clock, wall_clock=wall)
    await processor.start(host)
    return processor, sink


async def crash(processor: TailSamplingProcessor) -> None:
    """Stop the timer and close the files without deciding anything: what SIGKILL leaves on disk."""
    processor._stop.set()
    if processor._timer is not None:
        await processor._timer
    assert processor._storage is not None
    processor._storage.close()


async def test_waiting_traces_survive_a_crash_and_keep_their_first_arrival(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    first, sink = await started(host, clock, wall)
    await first.consume_traces(trace([span(1, 0, root=True), span(1, 1, status=2)]))
    await first.consume_traces(trace([span(2, 0, root=True)]))
    clock.now += 6
    wall.now += 6
    await first.consume_traces(trace([span(1, 2)]))  # trace 1 goes on arriving
    await crash(first)
    assert sink.spans() == []

    clock.now, wall.now = 5000.0, wall.now + 1  # a new process: another monotonic clock, 1 s later
    second, sink = await started(host, clock, wall)
    assert second.pending_traces == 2 and second.buffered_spans == 4
    await second.decide_due(clock.now + 2)  # 9 s after the first spans: still waiting
    assert sink.spans() == []
    await second.decide_due(clock.now + 3.1)  # 10 s after their first arrival, before the crash
    kept = spans_of(sink.batches[Signal.TRACES])
    assert sorted(s.span_id for s in kept) == sorted(span(1, i).span_id for i in range(3))
    assert {attribute(s, "tailsampling.policy") for s in kept} == {"errors"}
    await second.shutdown()


async def test_decisions_are_remembered_and_decided_spans_are_not_replayed(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    first, sink = await started(host, clock, wall)
    await first.consume_traces(trace([span(1, 0, root=True, status=2)]))
    await first.consume_traces(trace([span(2, 0, root=True)]))
    await first.decide_due(clock.now + 11)
    assert len(sink.spans()) == 1
    await first.consume_traces(trace([span(3, 0, root=True)]))  # keeps the log's segment alive
    await crash(first)

    second, sink = await started(host, clock, wall)
    assert second.pending_traces == 1  # trace 3 only: 1 and 2 were decided before the crash
    await second.consume_traces(trace([span(1, 5)]))  # a late span of kept trace 1: kept at once
    await second.consume_traces(trace([span(2, 5)]))  # of dropped trace 2: dropped at once
    late = spans_of(sink.batches[Signal.TRACES])
    assert [s.span_id for s in late] == [span(1, 5).span_id]
    assert attribute(late[0], "tailsampling.cached_decision") is True
    assert second.pending_traces == 1
    await second.shutdown()


async def test_decided_traces_are_compacted_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugins.processors.tail_sampling import storage
    monkeypatch.setattr(storage, "SEGMENT_BYTES", 4096)
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    processor, _sink = await started(host, clock, wall)
    directory = tmp_path / "processor_tail_sampling"
    for n in range(200):
        await processor.consume_traces(trace([span(n, i, root=i == 0) for i in range(5)]))
    assert len(list(directory.glob("*.wal"))) > 10
    await processor.decide_due(clock.now + 11)
    assert processor.pending_traces == 0
    assert len(list(directory.glob("*.wal"))) <= 1  # at most the segment being written
    assert sum(p.stat().st_size for p in directory.glob("*.wal")) <= 4096 + 8192
    await processor.shutdown()


async def test_at_storage_max_bytes_new_spans_are_refused_retryably(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    processor, _sink = await started(host, clock, wall, storage_max_bytes=20_000)
    accepted = 0
    with pytest.raises(OverloadedError, match="storage is full"):
        for n in range(1000):
            await processor.consume_traces(trace([span(n, i, root=i == 0) for i in range(5)]))
            accepted += 1
    assert 10 < accepted < 1000
    assert processor.pending_traces == accepted  # nothing of the refused request was taken
    await processor.decide_due(clock.now + 11)  # decisions free room
    await processor.consume_traces(trace([span(5000, 0, root=True)]))
    assert processor.pending_traces == 1
    await processor.shutdown()


async def test_shutdown_leaves_waiting_traces_in_storage(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    first, sink = await started(host, clock, wall)
    await first.consume_traces(trace([span(1, 0, root=True, status=2)]))
    await first.shutdown()
    assert sink.spans() == []  # not decided on a partial trace: it resumes after the next start
    second, sink = await started(host, clock, wall)
    assert second.pending_traces == 1
    await second.decide_due(clock.now + 11)
    assert len(sink.spans()) == 1
    await second.shutdown()


async def test_storage_must_name_a_file_storage_extension(tmp_path: Path) -> None:
    config = decode(factory.create_default_config(), {"policies": KEEP_ERRORS, "storage": "file_storage/nope"})
    processor = TailSamplingProcessor(settings_for(Kind.PROCESSOR, "tail_sampling", Signal.TRACES), config,
                                      Downstream())
    with pytest.raises(ConfigError, match="storage: file_storage/nope is not an extension listed"):
        await processor.start(make_host())
    bad = decode(factory.create_default_config(), {"policies": KEEP_ERRORS, "storage_max_bytes": 0})
    assert validate_tree(bad) == ["storage_max_bytes: must be > 0"]


async def test_kept_spans_the_next_component_refuses_stay_in_storage_until_it_takes_them(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    first, sink = await started(host, clock, wall)
    await first.consume_traces(trace([span(1, 0, root=True, status=2), span(1, 1)]))
    sink.error = RetryableError("persistent queue: disk full")
    await first.decide_due(clock.now + 11)
    assert sink.spans() == [] and first.metrics.send_failed_spans.labels("tail_sampling")._value.get() == 0
    clock.now += 1
    await first._retry_held()  # still refused: held again
    await crash(first)  # the decision was never written: the trace is replayed and decided again

    sink.error = None
    second, sink = await started(host, clock, wall)
    assert second.pending_traces == 1
    await second.decide_due(clock.now + 11)
    assert len(sink.spans()) == 2

    sink.error = RetryableError("full")
    await second.consume_traces(trace([span(2, 0, root=True, status=2)]))
    await second.decide_due(clock.now + 22)
    sink.error = None
    clock.now += 30
    await second._retry_held()
    assert len(sink.spans()) == 3 and second._held == []
    await second.shutdown()
    third, sink = await started(host, clock, wall)
    assert third.pending_traces == 0  # trace 2's decision was written once the spans were taken
    await third.shutdown()


async def test_a_storage_directory_is_owned_by_one_processor_at_a_time(tmp_path: Path) -> None:
    host, clock, wall = host_with_storage(tmp_path), Clock(), Wall()
    first, _sink = await started(host, clock, wall)
    with pytest.raises(OSError, match="in use by another process"):
        await started(host, clock, wall)
    await first.shutdown()
    second, _sink = await started(host, clock, wall)
    await second.shutdown()


async def test_a_full_disk_refuses_retryably_and_recovers_without_restart(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\xff" * 700_000)
        host, clock, wall = host_with_storage(disk), Clock(), Wall()
        processor, sink = await started(host, clock, wall)
        accepted = 0
        with pytest.raises(StorageUnavailable) as refused:
            for n in range(10_000):
                await processor.consume_traces(trace([span(n, i, root=i == 0, status=2) for i in range(5)]))
                accepted += 1
        assert isinstance(refused.value, RetryableError) and not isinstance(refused.value, OverloadedError)
        assert processor.pending_traces == accepted > 10  # nothing of the refused request was taken
        filler.unlink()  # space returns: the next request is taken, no restart
        await processor.consume_traces(trace([span(99_999, 0, root=True, status=2)]))
        await processor.decide_due(clock.now + 11)
        assert len(sink.spans()) == accepted * 5 + 1
        await processor.shutdown()


async def test_logs_another_worker_count_left_beside_this_one_are_taken_over(tmp_path: Path) -> None:
    """Two workers' logs, a restart with one: the file_storage take-over (gateway/_host/workers/storage.py) moves
    worker 1's log beside worker 0's, and the processor replays both. Waiting traces of both are decided, a trace
    worker 1 had decided already is not replayed, and the adopted log is gone once its spans are in this one."""
    from gateway._host.workers.storage import adopt

    clock, wall = Clock(), Wall()
    for worker, traces in ((0, [1, 2]), (1, [3, 4])):
        home = tmp_path / f"worker-{worker}"
        processor, sink = await started(host_with_storage(home), clock, wall)
        for number in traces:
            await processor.consume_traces(trace([span(number, 0, root=True, status=2)]))
        if worker == 1:
            await processor.decide_due(clock.now + 11)  # trace 3 and 4 kept (sent) and recorded as decided
            assert len(sink.spans()) == 2
            await processor.consume_traces(trace([span(5, 0, root=True, status=2), span(6, 0, root=True)]))
        await crash(processor)
    adopt(tmp_path, 0, 1, fsync=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processor_tail_sampling",
                                                          "processor_tail_sampling.from-worker-1"]
    single, sink = await started(host_with_storage(tmp_path), clock, wall)
    assert single.pending_traces == 4  # 1 and 2 of worker 0, 5 and 6 of worker 1; not 3 and 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processor_tail_sampling"]
    await single.decide_due(clock.now + 11)
    kept = sorted(s.span_id for s in spans_of(sink.batches[Signal.TRACES]))
    assert kept == sorted(span(n, 0).span_id for n in (1, 2, 5))  # the errors; 6 is not one
    await crash(single)
    again, _ = await started(host_with_storage(tmp_path), clock, wall)
    assert again.pending_traces == 0  # what was taken over was decided in this log, as its own spans are
    await again.shutdown()
