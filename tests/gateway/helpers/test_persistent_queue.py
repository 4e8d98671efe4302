from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.component import ComponentID, Kind, Signal
from gateway.errors import ConfigError, OverloadedError
from gateway.helpers import persistent_queue, walog
from gateway.helpers.exporter import ExporterHelper, QueueConfig, RetryConfig
from gateway.helpers.persistent_queue import MemoryQueue, PersistentQueue, QueueFull
from gateway.testing import make_host, make_traces, settings_for
from plugins.extensions.file_storage.config import Config as StorageConfig
from plugins.extensions.file_storage.extension import FileStorage

PARSE = ExportTraceServiceRequest.FromString


def batch(name: str) -> ExportTraceServiceRequest:
    request = make_traces(1)
    request.resource_spans[0].scope_spans[0].spans[0].name = name
    return request


def name_of(request: ExportTraceServiceRequest) -> str:
    return str(request.resource_spans[0].scope_spans[0].spans[0].name)


def open_queue(directory: Path, **kwargs: object) -> PersistentQueue:
    queue = PersistentQueue(directory, PARSE, capacity=kwargs.pop("capacity", 100), **kwargs)  # type: ignore[arg-type]
    queue.open()
    return queue


async def test_fifo_and_unfinished_requests_survive_a_restart(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    for i in range(5):
        queue.put(batch(f"b{i}"))
    _in_flight, first = await queue.get()
    token1, second = await queue.get()
    assert (name_of(first), name_of(second)) == ("b0", "b1")
    queue.done(token1)  # out of order: b0 is still in flight when the process dies
    queue.close()  # every write is already in the kernel, so this is what SIGKILL leaves behind
    again = open_queue(tmp_path)
    assert again.qsize() == 4
    names = []
    for _ in range(4):
        token, request = await again.get()
        names.append(name_of(request))
        again.done(token)
    assert names == ["b0", "b2", "b3", "b4"]
    await asyncio.wait_for(again.join(), 1)
    again.close()
    assert open_queue(tmp_path).qsize() == 0


async def test_a_torn_last_record_is_cut_off(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    queue.put(batch("whole"))
    queue.close()
    segment = next(tmp_path.glob("*.wal"))
    whole = segment.stat().st_size
    with open(segment, "ab") as handle:
        handle.write(walog.MAGIC + b"\x40\x00\x00\x00\x01\x02")  # part of a header: a write cut by a crash
    again = open_queue(tmp_path)
    assert again.qsize() == 1
    assert (again.dropped_records, again.dropped_bytes) == (1, 10)
    assert segment.stat().st_size == whole  # cut off
    assert name_of((await again.get())[1]) == "whole"
    again.close()


async def test_capacity_in_requests_and_in_bytes(tmp_path: Path) -> None:
    queue = open_queue(tmp_path / "r", capacity=2)
    queue.put(batch("a"))
    queue.put(batch("b"))
    with pytest.raises(QueueFull):
        queue.put(batch("c"))
    queue.close()
    size = len(batch("a").SerializeToString()) + walog.HEADER_BYTES
    by_bytes = open_queue(tmp_path / "b", capacity=size * 2, sizer="bytes")
    by_bytes.put(batch("a"))
    by_bytes.put(batch("b"))
    with pytest.raises(QueueFull):
        by_bytes.put(batch("c"))
    by_bytes.close()
    memory = MemoryQueue(size * 2, "bytes")
    memory.put(batch("a"))
    memory.put(batch("b"))
    with pytest.raises(QueueFull):
        memory.put(batch("c"))


async def test_finished_segments_are_deleted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistent_queue, "SEGMENT_BYTES", 1)  # one record per segment
    queue = open_queue(tmp_path, fsync=True)
    for i in range(4):
        queue.put(batch(f"b{i}"))
    assert len(list(tmp_path.glob("*.wal"))) == 4
    for _ in range(4):
        token, _request = await queue.get()
        queue.done(token)
    assert list(tmp_path.glob("*.wal")) == []  # the write segment too, once empty: the next put starts one
    queue.put(batch("again"))
    assert len(list(tmp_path.glob("*.wal"))) == 1
    queue.close()


def test_a_queue_is_owned_by_one_process_at_a_time(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    with pytest.raises(OSError, match="in use by another process"):
        open_queue(tmp_path)
    queue.close()
    open_queue(tmp_path).close()


class Backend:
    def __init__(self) -> None:
        self.up = False
        self.names: list[str] = []

    async def send(self, request: ExportTraceServiceRequest) -> None:
        if not self.up:
            raise ConnectionError("backend down")
        self.names.append(name_of(request))


async def test_exporter_helper_keeps_its_backlog_on_disk_across_a_restart(tmp_path: Path) -> None:
    storage = FileStorage(settings_for(Kind.EXTENSION, "file_storage"),
                          StorageConfig(directory=str(tmp_path), create_directory=True))
    host = make_host()
    await storage.start(host)
    host.extensions[ComponentID("file_storage")] = storage
    queue = QueueConfig(num_consumers=2, storage="file_storage")
    retry = RetryConfig(initial_interval=0.01, max_interval=0.02, max_elapsed_time=0)
    backend = Backend()

    def helper() -> ExporterHelper:
        return ExporterHelper(settings_for(Kind.EXPORTER, "otlp", Signal.TRACES), backend.send, timeout=1,
                              queue=queue, retry=retry, drain_timeout=0.2)

    first = helper()
    with pytest.raises(Exception, match="not started"):
        await first.consume(batch("early"))
    await first.start(host)
    for i in range(10):
        await first.consume(batch(f"b{i}"))
    await first.shutdown()  # the backend is down: the drain gives up, the backlog stays on disk
    assert backend.names == []
    backend.up = True
    second = helper()
    await second.start(host)
    for _ in range(200):
        if len(backend.names) == 10:
            break
        await asyncio.sleep(0.01)
    await second.shutdown()
    assert sorted(backend.names) == sorted(f"b{i}" for i in range(10))


async def test_exporter_helper_refuses_when_the_persistent_queue_is_full(tmp_path: Path) -> None:
    host = make_host()
    storage = FileStorage(settings_for(Kind.EXTENSION, "file_storage"), StorageConfig(directory=str(tmp_path)))
    host.extensions[ComponentID("file_storage")] = storage
    helper = ExporterHelper(settings_for(Kind.EXPORTER, "otlp", Signal.TRACES), Backend().send, timeout=1,
                            queue=QueueConfig(queue_size=1, storage="file_storage"),
                            retry=RetryConfig(enabled=False), drain_timeout=0.1)
    await helper.start(host)
    await helper.consume(batch("a"))
    await asyncio.sleep(0.05)  # taken by a worker, failed, finished: room again
    await helper.consume(batch("b"))
    helper._workers[0].cancel()
    await helper.shutdown()


async def test_storage_must_be_a_configured_file_storage_extension(tmp_path: Path) -> None:
    helper = ExporterHelper(settings_for(Kind.EXPORTER, "otlp", Signal.TRACES), Backend().send, timeout=1,
                            queue=QueueConfig(storage="file_storage/missing"), retry=RetryConfig())
    with pytest.raises(ConfigError, match="sending_queue::storage: file_storage/missing is not an extension listed"):
        await helper.start(make_host())
    assert OverloadedError  # imported for the API surface this module exercises


def test_file_storage_config() -> None:
    from gateway.configtypes import validate_tree
    assert validate_tree(StorageConfig(directory="/nonexistent/x")) == [
        "directory: '/nonexistent/x' does not exist or is not a directory (set create_directory: true to create it)"]
    assert validate_tree(StorageConfig(directory="/nonexistent/x", create_directory=True)) == []
