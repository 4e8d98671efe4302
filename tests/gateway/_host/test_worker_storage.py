"""file_storage under ``--workers N``: each worker's own directory, and the data another worker count left
behind taken over (moved, or merged record by record for persistent queues), on real queue directories.
tests/test_workers.py runs the same through real gateway processes killed with SIGKILL."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host.workers.storage import adopt, foreign_directories, worker_home
from gateway.client import ClientInfo
from gateway.helpers.persistent_queue import PersistentQueue, merge_queue
from gateway.testing import make_traces

QUEUE = "exporter_otlp_traces"


def fill(directory: Path, *names: str, sender: ClientInfo | None = None) -> None:
    queue = PersistentQueue(directory, ExportTraceServiceRequest.FromString, capacity=1000)
    queue.open()
    for name in names:
        queue.put(make_traces(2, service=name), sender)
    queue.close()


async def drain(directory: Path) -> list[tuple[str, ClientInfo | None]]:
    """(service, sender) of every unsent request, in order; finishes them."""
    queue = PersistentQueue(directory, ExportTraceServiceRequest.FromString, capacity=1000)
    found = []
    for _ in range(queue.open()):
        token, request = await queue.get()
        found.append((request.resource_spans[0].resource.attributes[0].value.string_value, queue.sender(token)))
        queue.done(token)
    queue.close()
    return found


def test_homes_and_what_each_process_takes_over(tmp_path: Path) -> None:
    for j in range(4):
        (tmp_path / f"worker-{j}").mkdir()
    (tmp_path / "worker-x").mkdir()  # not a worker's
    assert worker_home(tmp_path, 0, 1) == tmp_path and worker_home(tmp_path, 1, 2) == tmp_path / "worker-1"
    assert [p.name for p, _ in foreign_directories(tmp_path, 0, 1)] == [f"worker-{j}" for j in range(4)]
    assert foreign_directories(tmp_path, 0, 2) == [(tmp_path, True), (tmp_path / "worker-2", False)]
    assert foreign_directories(tmp_path, 1, 2) == [(tmp_path / "worker-3", False)]
    assert foreign_directories(tmp_path, 2, 4) == []


async def test_two_workers_queues_merge_into_one_gateway_with_their_senders(tmp_path: Path) -> None:
    tenant = ClientInfo({"x-tenant": ("acme",)}, "10.0.0.7:5000")
    fill(tmp_path / "worker-0" / QUEUE, "a0", "a1")
    fill(tmp_path / "worker-1" / QUEUE, "b0", sender=tenant)
    fill(tmp_path / "worker-1" / QUEUE, "b1")  # appended after a restart of worker 1
    (tmp_path / "worker-1" / "connector_kpi_kpi").mkdir()
    (tmp_path / "worker-1" / "connector_kpi_kpi" / "kpi-state.json").write_text("{}")
    adopt(tmp_path, 0, 1, fsync=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connector_kpi_kpi", QUEUE]
    assert (tmp_path / "connector_kpi_kpi" / "kpi-state.json").read_text() == "{}"
    assert await drain(tmp_path / QUEUE) == [("a0", None), ("a1", None), ("b0", tenant), ("b1", None)]


async def test_one_gateway_s_data_becomes_worker_0_s(tmp_path: Path) -> None:
    fill(tmp_path / QUEUE, "s0")
    adopt(tmp_path, 1, 2, fsync=False)  # worker 1 takes nothing of it
    assert (tmp_path / QUEUE).is_dir() and not list((tmp_path / "worker-1").iterdir())
    adopt(tmp_path, 0, 2, fsync=False)
    assert not (tmp_path / QUEUE).exists()
    assert await drain(tmp_path / "worker-0" / QUEUE) == [("s0", None)]


async def test_from_three_workers_to_two_the_third_s_data_goes_to_worker_0(tmp_path: Path) -> None:
    fill(tmp_path / "worker-0" / QUEUE, "w0")
    fill(tmp_path / "worker-2" / QUEUE, "w2")
    for home in ("worker-0", "worker-2"):  # tail_sampling buffers: a format of their own
        (tmp_path / home / "processor_tail_sampling").mkdir()
    adopt(tmp_path, 0, 2, fsync=False)
    assert await drain(tmp_path / "worker-0" / QUEUE) == [("w0", None), ("w2", None)]
    # Put beside worker 0's own, for tail_sampling to replay into it at start (tail_sampling/test_storage.py).
    assert sorted(p.name for p in (tmp_path / "worker-0").iterdir()) == [
        QUEUE, "processor_tail_sampling", "processor_tail_sampling.from-worker-2"]
    assert not (tmp_path / "worker-2").exists()


async def test_a_queue_a_running_process_holds_is_left_alone(tmp_path: Path) -> None:
    fill(tmp_path / "worker-1" / QUEUE, "busy")
    fd = os.open(tmp_path / "worker-1" / QUEUE / "lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the queue of a live worker holds it
    try:
        adopt(tmp_path, 0, 1, fsync=False)
    finally:
        os.close(fd)
    assert (tmp_path / "worker-1" / QUEUE).is_dir() and not (tmp_path / QUEUE).exists()
    adopt(tmp_path, 0, 1, fsync=False)  # once it is free
    assert await drain(tmp_path / QUEUE) == [("busy", None)]


def test_merge_leaves_the_source_until_the_caller_removes_it(tmp_path: Path) -> None:
    fill(tmp_path / "old", "x", "y")
    fill(tmp_path / "new", "z")
    assert merge_queue(tmp_path / "old", tmp_path / "new", fsync=False) == 2
    # A crash here would send x and y twice (from both directories), never lose them.
    assert [name for name, _ in asyncio.run(drain(tmp_path / "old"))] == ["x", "y"]
    assert [name for name, _ in asyncio.run(drain(tmp_path / "new"))] == ["z", "x", "y"]
