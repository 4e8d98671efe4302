"""Nothing acknowledged is lost: SIGKILL during ingestion (tail_sampling storage in front of a persistent queue)
and during a persistent queue's replay, with real gateway processes, a real gRPC client and an OTLP sink that
counts every span by id. Duplicates are allowed (delivery is at least once), counted and printed; losses are not.

Randomized versions: tests/faults/test_random_kills.py (one seed in make test, 20 with make faults).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway.helpers import walog
from gateway.helpers.persistent_queue import _ack
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from durability import (
    SPANS_PER_REQUEST,
    Sender,
    delivered,
    gateway_config,
    kill_during_ingestion,
    kill_during_replay,
    new_ports,
    report,
    span_ids,
    wait_for_all,
)
from gwproc import GatewayProcess, tmpfs


async def test_sigkill_during_ingestion_with_tail_sampling_storage_loses_no_acknowledged_span(
        tmp_path: Path) -> None:
    lost, _duplicates = await kill_during_ingestion(tmp_path, after_requests=25)
    assert lost == 0


async def test_sigkill_during_replay_of_a_persistent_queue_loses_nothing(tmp_path: Path) -> None:
    lost, _duplicates = await kill_during_replay(tmp_path)
    assert lost == 0


async def test_a_full_disk_refuses_retryably_drains_and_resumes_without_restart(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        filler = disk / "filler"
        filler.write_bytes(b"\xff" * 1_300_000)  # another tenant of the disk
        sink = OtlpSink()
        await sink.start()
        sink.fail_next(100_000, message="backend down")
        ports = new_ports()
        config = gateway_config(tmp_path, sink, ports, tail_sampling=False, storage_dir=disk / "storage")
        gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start()
        sender = Sender(ports["grpc"])
        try:
            await asyncio.to_thread(gateway.wait_ready)
            code = grpc.StatusCode.OK
            while code is grpc.StatusCode.OK and sender.requests < 2000:
                code = await asyncio.to_thread(sender.send, make_traces(SPANS_PER_REQUEST))
            assert code is grpc.StatusCode.UNAVAILABLE  # retryable: SDKs keep the data and try again
            assert sender.requests > 5
            assert gateway.metric("otelcol_exporter_enqueue_failed_spans_total") >= SPANS_PER_REQUEST
            assert "No space left on device" in gateway.log()
            sink.clear()  # the backend is back: the queue drains although the disk is full
            await wait_for_all(sink, sender.acknowledged, 60, gateway)
            # The drained queue gave its space back: ingestion resumes, no restart.
            assert await asyncio.to_thread(sender.send, make_traces(SPANS_PER_REQUEST)) is grpc.StatusCode.OK
            filler.unlink()
            for _ in range(20):
                assert await asyncio.to_thread(sender.send, make_traces(SPANS_PER_REQUEST)) is grpc.StatusCode.OK
            await wait_for_all(sink, sender.acknowledged, 60, gateway)
            lost, _duplicates = report(sink, sender.acknowledged)
            assert lost == 0
            assert gateway.stop() == 0
        finally:
            gateway.kill()
            await sink.stop()


async def test_damaged_queue_files_lose_only_the_damaged_record(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(100_000, message="backend down")
    ports = new_ports()
    config = gateway_config(tmp_path, sink, ports, tail_sampling=False)
    log = tmp_path / "gateway.log"
    gateway = GatewayProcess(config, ports, log).start()
    sender = Sender(ports["grpc"])
    try:
        await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(sender.run, lambda s: s.requests >= 30)
        gateway.kill()
        queue = tmp_path / "storage" / "exporter_otlp_traces"
        (segment,) = queue.glob("*.wal")
        data = bytearray(segment.read_bytes())
        records = walog.scan(bytes(data), int(segment.stem)).records
        assert len(records) == 30
        damaged = records[15]
        payload_at = damaged.offset + walog.HEADER_BYTES
        lost_ids = set(span_ids(ExportTraceServiceRequest.FromString(
            bytes(data[payload_at:payload_at + damaged.length]))))
        data[payload_at + damaged.length // 2] ^= 0x04  # one flipped bit in the middle of the segment
        segment.write_bytes(bytes(data) + bytes(256 * 1024))  # and a zero-filled tail
        with open(queue / "acks.log", "ab") as acks:
            acks.write(b"\x13\x37 not an acknowledgement")
            acks.write(_ack(10**6))  # a stray id
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        sink.clear()
        expected = [i for i in sender.acknowledged if i not in lost_ids]
        await wait_for_all(sink, expected, 60, gateway)
        await asyncio.sleep(0.5)  # anything invented would arrive by now
        assert sorted(delivered(sink)) == sorted(expected)  # 29 requests, each once; nothing invented
        assert gateway.metric("otelgw_exporter_queue_recovery_dropped_records_total") == 1
        assert gateway.metric("otelgw_exporter_queue_recovery_dropped_bytes_total") == \
            walog.HEADER_BYTES + damaged.length
        text = gateway.log()
        assert "skipped damaged records" in text and "stray_ids" in text and "zero-filled tail" in text
        assert gateway.stop() == 0
    finally:
        gateway.kill()
        await sink.stop()
