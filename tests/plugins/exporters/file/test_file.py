from __future__ import annotations

import asyncio
import os
import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway import otlpjson
from gateway._host.telemetry import Telemetry
from gateway.component import Batch, Kind, Signal, consume
from gateway.errors import RetryableError
from gateway.testing import make_host, make_logs, make_metrics, make_traces, settings_for
from plugins.exporters.file.config import Config, Rotation
from plugins.exporters.file.exporter import FileExporter
from plugins.exporters.file.factory import factory
from plugins.exporters.file.writer import backup_name

BACKUP = re.compile(r"^spans-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}\.pb$")


def awkward_batches() -> dict[Signal, Batch]:
    """One batch per signal with strings that would break naive line framing, and non-id bytes fields."""
    traces = make_traces(12, attributes={"note": "line one\nline two\r\n\u2028tab\t", "raw": b"\x00\xff\n"},
                         error_every=3)
    traces.MergeFrom(make_traces(3, service="second", resource={"region": "eu-west-1"}))
    metrics = make_metrics(7, attributes={"ünïcode": "✓"})
    histogram = metrics.resource_metrics[0].scope_metrics[0].metrics.add(name="latency")
    histogram.histogram.aggregation_temporality = 2
    histogram.histogram.data_points.add(count=4, sum=2.5, bucket_counts=[1, 3], explicit_bounds=[1.0],
                                        time_unix_nano=2**63 - 1)
    logs = make_logs(5, body={"nested": [1, 2.5, True, "x", b"\x01"]})
    logs.resource_logs[0].scope_logs[0].log_records[0].trace_id = bytes(range(16))
    return {Signal.TRACES: traces, Signal.METRICS: metrics, Signal.LOGS: logs}


def exporters(config: Config, name: str = "file", telemetry: Telemetry | None = None) -> dict[Signal, Any]:
    telemetry = telemetry or Telemetry()
    out = {}
    for signal in Signal:
        create = factory.create_fn(signal)
        assert create is not None
        out[signal] = create(settings_for(Kind.EXPORTER, name, signal, telemetry), config)
    return out


async def run(config: Config, batches: list[tuple[Signal, Batch]]) -> dict[Signal, FileExporter]:
    by_signal = exporters(config)
    host = make_host()
    for exporter in by_signal.values():
        await exporter.start(host)
    for signal, batch in batches:
        await consume(by_signal[signal], signal, batch)
    for exporter in by_signal.values():
        await exporter.shutdown()
    return by_signal


def read_proto_records(path: Path) -> list[bytes]:
    data, records, pos = path.read_bytes(), [], 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        records.append(data[pos + 4:pos + 4 + length])
        pos += 4 + length
    assert pos == len(data)
    return records


async def test_json_lines_decode_back_to_the_exact_requests(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "out.jsonl"  # parent directories are created
    batches = awkward_batches()
    order = [Signal.TRACES, Signal.METRICS, Signal.LOGS, Signal.TRACES]
    await run(Config(path=str(path)), [(s, batches[s]) for s in order])
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(order) + 1
    for signal, line in zip(order, lines, strict=False):
        decoded = otlpjson.decode(line, signal.request_type)
        assert decoded == batches[signal]
    assert b'"traceId":"000102030405060708090a0b0c0d0e0f"' in lines[2]  # hex ids, as OTLP/JSON wants


async def test_proto_records_parse_back_to_the_exact_requests(tmp_path: Path) -> None:
    path = tmp_path / "out.pb"
    batches = awkward_batches()
    order = [Signal.LOGS, Signal.TRACES, Signal.METRICS]
    await run(Config(path=str(path), format="proto"), [(s, batches[s]) for s in order])
    records = read_proto_records(path)
    assert [signal.request_type.FromString(r) for signal, r in zip(order, records, strict=True)] == [
        batches[s] for s in order]


async def test_flush_interval_zero_makes_every_write_visible_at_once(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    [exporter] = [exporters(Config(path=str(path), flush_interval=0))[Signal.TRACES]]
    await exporter.start(make_host())
    await exporter.consume_traces(make_traces(2))
    assert path.read_bytes().count(b"\n") == 1
    await exporter.shutdown()


async def test_periodic_flush_makes_writes_visible_without_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    exporter = exporters(Config(path=str(path), flush_interval=0.01))[Signal.LOGS]
    await exporter.start(make_host())
    await exporter.consume_logs(make_logs(2))
    for _ in range(500):
        if path.stat().st_size:
            break
        await asyncio.sleep(0.005)
    assert path.read_bytes().count(b"\n") == 1
    await exporter.shutdown()


async def test_existing_file_is_truncated_unless_append(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"old\n")
    await run(Config(path=str(path), append=True), [(Signal.TRACES, make_traces(1))])
    assert path.read_bytes().startswith(b"old\n") and path.read_bytes().count(b"\n") == 2
    await run(Config(path=str(path)), [(Signal.TRACES, make_traces(1))])
    assert not path.read_bytes().startswith(b"old") and path.read_bytes().count(b"\n") == 1


async def test_signals_share_one_writer_until_the_last_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    by_signal = exporters(Config(path=str(path)))
    for exporter in by_signal.values():
        await exporter.start(make_host())
    await by_signal[Signal.TRACES].shutdown()
    await by_signal[Signal.METRICS].consume_metrics(make_metrics(3))  # upstream of metrics still draining
    await by_signal[Signal.METRICS].shutdown()
    await by_signal[Signal.LOGS].consume_logs(make_logs(1))
    await by_signal[Signal.LOGS].shutdown()
    assert path.read_bytes().count(b"\n") == 2
    with pytest.raises(RetryableError):
        await by_signal[Signal.LOGS].consume_logs(make_logs(1))


async def test_consume_before_start_is_retryable(tmp_path: Path) -> None:
    exporter = exporters(Config(path=str(tmp_path / "x.jsonl")))[Signal.TRACES]
    with pytest.raises(RetryableError):
        await exporter.consume_traces(make_traces(1))
    await exporter.shutdown()
    assert not (tmp_path / "x.jsonl").exists()  # created, never started: nothing opened


async def test_write_failure_is_retryable_and_counted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    telemetry = Telemetry()
    exporter = exporters(Config(path=str(tmp_path / "x.jsonl")), telemetry=telemetry)[Signal.TRACES]
    await exporter.start(make_host(telemetry))

    def disk_full(record: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(exporter._shared.writer, "write", disk_full)  # type: ignore[union-attr]
    with pytest.raises(RetryableError, match="No space left"):
        await exporter.consume_traces(make_traces(4))
    failed = telemetry.registry.get_sample_value("otelcol_exporter_send_failed_spans_total",
                                                 {"exporter": "file"})
    assert failed == 4
    await exporter.shutdown()


async def test_sent_items_are_counted(tmp_path: Path) -> None:
    telemetry = Telemetry()
    by_signal = exporters(Config(path=str(tmp_path / "x.jsonl")), telemetry=telemetry)
    for exporter in by_signal.values():
        await exporter.start(make_host(telemetry))
    await by_signal[Signal.METRICS].consume_metrics(make_metrics(6))
    for exporter in by_signal.values():
        await exporter.shutdown()
    value = telemetry.registry.get_sample_value("otelcol_exporter_sent_metric_points_total",
                                                {"exporter": "file"})
    assert value == 6


async def test_rotation_at_the_size_keeps_max_backups(tmp_path: Path) -> None:
    path = tmp_path / "spans.pb"
    request = make_traces(1000)  # about 120 KB as protobuf
    record_size = len(request.SerializeToString()) + 4
    per_file = (1024 * 1024) // record_size
    config = Config(path=str(path), format="proto", rotation=Rotation(max_megabytes=1, max_backups=100))
    writes = per_file * 3 + 2
    await run(config, [(Signal.TRACES, request)] * writes)
    backups = sorted(p for p in tmp_path.iterdir() if p != path)
    assert len(backups) == 3
    assert all(BACKUP.match(p.name) for p in backups), [p.name for p in backups]
    for backup in backups:
        size = backup.stat().st_size
        assert size <= 1024 * 1024 and size == per_file * record_size  # rotated before it would exceed
    files = [*backups, path]  # lumberjack timestamps sort oldest first
    records = [r for f in files for r in read_proto_records(f)]
    assert len(records) == writes and all(r == request.SerializeToString() for r in records)

    # More rotations with max_backups: 2 keep only the two newest backups.
    config = Config(path=str(path), format="proto", rotation=Rotation(max_megabytes=1, max_backups=2))
    await run(config, [(Signal.TRACES, request)] * (per_file * 2))
    remaining = sorted(p for p in tmp_path.iterdir() if p != path)
    assert len(remaining) == 2
    assert remaining[0] > backups[-1]  # the older ones were the ones removed


async def test_an_oversized_record_gets_a_file_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "spans.pb"
    big = make_traces(10_000)  # about 1.2 MB: larger than max_megabytes
    small = make_traces(1)
    config = Config(path=str(path), format="proto", rotation=Rotation(max_megabytes=1))
    await run(config, [(Signal.TRACES, small), (Signal.TRACES, big), (Signal.TRACES, small)])
    backups = sorted(p for p in tmp_path.iterdir() if p != path)
    assert [len(read_proto_records(p)) for p in [*backups, path]] == [1, 1, 1]


async def test_max_days_prunes_backups_by_the_timestamp_in_their_name(tmp_path: Path) -> None:
    path = tmp_path / "spans.pb"
    old = backup_name(path, datetime.now(UTC) - timedelta(days=10))
    recent = backup_name(path, datetime.now(UTC) - timedelta(days=1))
    unrelated = tmp_path / "spans-notes.pb"
    for p in (old, recent, unrelated):
        p.write_bytes(b"")
    request = make_traces(1000)
    per_file = (1024 * 1024) // (len(request.SerializeToString()) + 4)
    rotation = Rotation(max_megabytes=1, max_days=3, max_backups=0)
    config = Config(path=str(path), format="proto", rotation=rotation)
    await run(config, [(Signal.TRACES, request)] * (per_file + 1))
    names = {p.name for p in tmp_path.iterdir()}
    assert old.name not in names
    assert {recent.name, unrelated.name, path.name} <= names
    assert len(names) == 4  # plus the backup just made


def test_backup_names_follow_lumberjack() -> None:
    when = datetime(2006, 1, 2, 15, 4, 5, 123456)
    assert backup_name(Path("/var/log/otel/traces.json"), when) == Path(
        "/var/log/otel/traces-2006-01-02T15-04-05.123.json")
    assert backup_name(Path("spans"), when) == Path("spans-2006-01-02T15-04-05.123")


async def test_rotation_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.pb"
    path.write_bytes(b"kept")
    config = Config(path=str(path), format="proto", rotation=Rotation())
    await run(config, [(Signal.TRACES, make_traces(1))])
    assert path.read_bytes().startswith(b"kept")
    assert os.path.getsize(path) > 4
