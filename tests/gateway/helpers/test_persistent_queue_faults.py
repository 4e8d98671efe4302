"""The persistent queue against damaged files and a full disk: only a damaged record is lost, nothing is invented,
a full disk refuses new data as retryable while the queue keeps draining, and recovers without a restart."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.errors import RetryableError
from gateway.helpers import walog
from gateway.helpers.persistent_queue import PersistentQueue, StorageUnavailable, _ack
from gateway.testing import make_traces

sys.path.insert(0, str(Path(__file__).parents[2]))
from gwproc import tmpfs

PARSE = ExportTraceServiceRequest.FromString


def batch(name: str, spans: int = 1) -> ExportTraceServiceRequest:
    request = make_traces(spans)
    request.resource_spans[0].scope_spans[0].spans[0].name = name
    return request


def name_of(request: ExportTraceServiceRequest) -> str:
    return str(request.resource_spans[0].scope_spans[0].spans[0].name)


def open_queue(directory: Path, capacity: int = 1000) -> PersistentQueue:
    queue = PersistentQueue(directory, PARSE, capacity=capacity)
    queue.open()
    return queue


async def drain(queue: PersistentQueue) -> list[str]:
    names = []
    while queue.qsize():
        token, request = await queue.get()
        names.append(name_of(request))
        queue.done(token)
    return names


def write(directory: Path, names: list[str]) -> list[int]:
    """Queue ``names``, close; returns the offset of each record in the (single) segment."""
    queue = open_queue(directory)
    for name in names:
        queue.put(batch(name))
    offsets = [record.offset for record in queue._pending]
    queue.close()
    return offsets


def segment(directory: Path) -> Path:
    (path,) = directory.glob("*.wal")
    return path


@pytest.mark.parametrize("where", ["payload", "length", "magic", "crc"])
async def test_a_flipped_bit_loses_only_its_record(tmp_path: Path, where: str) -> None:
    offsets = write(tmp_path, [f"b{i}" for i in range(5)])
    position = offsets[2] + {"payload": walog.HEADER_BYTES + 30, "length": 5, "magic": 1, "crc": 17}[where]
    data = bytearray(segment(tmp_path).read_bytes())
    data[position] ^= 0x10
    segment(tmp_path).write_bytes(bytes(data))
    queue = open_queue(tmp_path)
    assert (queue.dropped_records, queue.dropped_bytes) == (1, offsets[3] - offsets[2])
    assert await drain(queue) == ["b0", "b1", "b3", "b4"]
    queue.close()


async def test_a_damaged_run_of_records_is_counted_by_their_ids(tmp_path: Path) -> None:
    offsets = write(tmp_path, [f"b{i}" for i in range(6)])
    data = bytearray(segment(tmp_path).read_bytes())
    data[offsets[1]:offsets[4]] = b"\xee" * (offsets[4] - offsets[1])  # three records overwritten
    segment(tmp_path).write_bytes(bytes(data))
    queue = open_queue(tmp_path)
    assert (queue.dropped_records, queue.dropped_bytes) == (3, offsets[4] - offsets[1])
    assert await drain(queue) == ["b0", "b4", "b5"]
    queue.close()


async def test_a_zero_filled_tail_is_empty_space_not_records(tmp_path: Path) -> None:
    write(tmp_path, ["a", "b"])
    whole = segment(tmp_path).stat().st_size
    with open(segment(tmp_path), "ab") as handle:
        handle.write(bytes(512 * 1024))  # preallocated or torn pages
    queue = open_queue(tmp_path)
    assert (queue.qsize(), queue.dropped_records, queue.dropped_bytes) == (2, 0, 0)
    assert segment(tmp_path).stat().st_size == whole
    assert await drain(queue) == ["a", "b"]
    queue.close()


async def test_a_segment_of_zeros_holds_nothing(tmp_path: Path) -> None:
    (tmp_path / f"{0:020d}.wal").write_bytes(bytes(64 * 1024))
    queue = open_queue(tmp_path)
    assert (queue.qsize(), queue.dropped_records) == (0, 0)
    queue.put(batch("new"))
    assert await drain(queue) == ["new"]
    queue.close()


async def test_garbage_and_stray_ids_in_the_ack_log(tmp_path: Path) -> None:
    queue = open_queue(tmp_path)
    for i in range(6):
        queue.put(batch(f"b{i}"))
    for _ in range(2):
        token, _request = await queue.get()
        queue.done(token)  # b0, b1 acknowledged
    queue.close()
    with open(tmp_path / "acks.log", "ab") as handle:
        handle.write(b"\x01\x02\x03\x04\x05\x06\x07")  # garbage: misaligns whatever follows
        handle.write(_ack(6))  # a stray id: the next record written will get id 6
        handle.write(_ack(2))  # b2, acknowledged after the garbage: found by resynchronising
        handle.write(bytes(4096))  # a zero-filled tail
    queue = open_queue(tmp_path)
    assert queue.stray_acks == 1
    queue.put(batch("b6"))  # id 6: the stray acknowledgement must not make it look finished
    queue.close()
    queue = open_queue(tmp_path)
    assert await drain(queue) == ["b3", "b4", "b5", "b6"]
    queue.close()


async def test_a_full_disk_refuses_retryably_keeps_draining_and_recovers(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\xff" * 600_000)  # someone else's data: deleting it gives space back later
        queue = open_queue(disk / "q")
        accepted: list[str] = []
        with pytest.raises(StorageUnavailable) as refused:
            for i in range(10_000):
                queue.put(batch(f"b{i}", spans=20))
                accepted.append(f"b{i}")
        assert isinstance(refused.value, RetryableError) and refused.value.disk_full
        assert len(accepted) > 10
        half = len(accepted) // 2
        sent = []
        for _ in range(half):  # the queue keeps draining on a full disk
            token, request = await queue.get()
            sent.append(name_of(request))
            queue.done(token)
        assert sent == accepted[:half]
        with pytest.raises(StorageUnavailable):
            queue.put(batch("refused", spans=20))
        filler.unlink()  # space returns: the very next put succeeds, no restart
        queue.put(batch("after", spans=20))
        accepted.append("after")
        queue.close()
        queue = open_queue(disk / "q")
        assert queue.dropped_records == 0
        assert await asyncio.wait_for(drain(queue), 10) == accepted[half:]
        queue.close()


async def test_a_full_disk_gives_back_the_write_segment_once_drained(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        queue = open_queue(disk / "q")
        with pytest.raises(StorageUnavailable):
            for i in range(10_000):
                queue.put(batch(f"b{i}", spans=20))
        await drain(queue)  # everything in one segment: deleted once drained, so the disk is empty again
        assert list((disk / "q").glob("*.wal")) == []
        queue.put(batch("after"))
        assert await drain(queue) == ["after"]
        queue.close()
