"""Reading files: rotation by rename and copytruncate, start_at, multiline, limits and bad input. Real files in a
tmp dir, an in-process gateway, records counted at a real OTLP sink."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from filelog_testlib import bodies, sink_records, wait_for

FAST = "poll_interval: 20ms\nforce_flush_period: 100ms\n"


def append(path: Path, lines: list[str]) -> None:
    with path.open("a") as f:
        f.write("".join(line + "\n" for line in lines))


def counter(gateway, name: str, **labels: str) -> float:
    value = gateway.service.telemetry.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_lines_and_file_name(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    append(log, ["one", "  two  ", "", "three"])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\ninclude_file_path: true\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 3)
    assert bodies(sink) == ["one", "two", "three"]  # whitespace trimmed, empty lines skipped, as the Collector
    _, record = sink_records(sink)[0]
    attributes = {kv.key: kv.value.string_value for kv in record.attributes}
    assert attributes == {"log.file.name": "app.log", "log.file.path": str(log)}
    assert record.observed_time_unix_nano > 0


async def test_start_at_end_skips_what_is_there(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    append(log, ["old"])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\n' + FAST)
    await wait_for(lambda: gateway.service.graph is not None)
    receiver = _receiver(gateway)
    await wait_for(lambda: receiver.polls >= 2)
    append(log, ["new"])
    (tmp_path / "later.log").write_text("from a file created later\n")  # read from its beginning
    await wait_for(lambda: len(bodies(sink)) == 2)
    assert sorted(bodies(sink)) == ["from a file created later", "new"]


def _receiver(gateway):
    from gateway.component import Kind
    return gateway.service.graph.find(Kind.RECEIVER, "filelog")


@pytest.mark.parametrize("pattern", ["app.log", "app.log*"], ids=["rotated name not included", "rotated included"])
async def test_rotation_by_rename_loses_and_duplicates_nothing(tmp_path, gateway, sink, pattern):
    log = tmp_path / "app.log"
    await gateway.start(f'include: ["{tmp_path}/{pattern}"]\nstart_at: beginning\n' + FAST)
    receiver = _receiver(gateway)
    written = 0
    for rotation in range(5):
        for _ in range(20):
            append(log, [f"line {written}" for written in range(written, written + 50)])
            written += 50
        polls = receiver.polls
        await wait_for(lambda p=polls: receiver.polls > p + 1)  # the file was opened before it is rotated
        # a rotated name include does not match is read to its end through the open file before it is dropped;
        # one it matches keeps its offset
        os.rename(log, tmp_path / f"app.log.{rotation}")
        append(log, [f"line {written}"])
        written += 1
    await wait_for(lambda: len(bodies(sink)) >= written)
    got = bodies(sink)
    assert sorted(got, key=lambda b: int(b.split()[1])) == [f"line {i}" for i in range(written)]
    assert len(got) == written


async def test_copytruncate_loses_and_duplicates_nothing(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    await gateway.start(f'include: ["{tmp_path}/app.log*"]\nstart_at: beginning\n' + FAST)
    receiver = _receiver(gateway)
    written = 0
    for rotation in range(4):
        append(log, [f"line {i}" for i in range(written, written + 300)])
        written += 300
        polls = receiver.polls
        await wait_for(lambda p=polls: receiver.polls > p)
        append(log, [f"line {i}" for i in range(written, written + 7)])  # not read yet when the copy is made
        written += 7
        (tmp_path / f"app.log.{rotation}").write_bytes(log.read_bytes())  # logrotate's copytruncate
        with log.open("r+") as f:
            f.truncate(0)
        append(log, [f"after rotation {rotation} line {i}" for i in range(3)])
    await wait_for(lambda: len(bodies(sink)) >= written + 12, timeout=15)
    got = bodies(sink)
    assert sorted(b for b in got if b.startswith("line")) == sorted(f"line {i}" for i in range(written))
    assert len(got) == written + 12


async def test_multiline_start_pattern_and_force_flush(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    log.write_text("2026-12-06 ERROR boom\nTraceback:\n  File x\n2026-12-06 INFO ok\n")
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n'
                        'multiline: {line_start_pattern: "^\\\\d{4}-\\\\d{2}-\\\\d{2}"}\n' + FAST)
    # the last entry has no start after it: it goes out once the file has been quiet for force_flush_period
    await wait_for(lambda: len(bodies(sink)) == 2)
    assert bodies(sink) == ["2026-12-06 ERROR boom\nTraceback:\n  File x", "2026-12-06 INFO ok"]


async def test_line_without_newline_is_flushed(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    log.write_text("complete\npartial")
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 2)
    assert bodies(sink) == ["complete", "partial"]


async def test_ten_megabyte_line_is_cut_not_buffered_whole(tmp_path, gateway, sink):
    log = tmp_path / "big.log"
    log.write_bytes(b"x" * (10 * 1024 * 1024) + b"\nafter\n")
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\nmax_log_size: 1MiB\n' + FAST)
    await wait_for(lambda: "after" in bodies(sink), timeout=20)
    got = bodies(sink)
    assert got[-1] == "after"
    assert [len(b) for b in got[:-1]] == [1024 * 1024] * 10
    assert counter(gateway, "otelgw_receiver_filelog_problems_total", receiver="filelog", reason="entry_cut") >= 1


async def test_binary_garbage_is_counted_and_other_files_go_on(tmp_path, gateway, sink):
    (tmp_path / "garbage.log").write_bytes(os.urandom(200_000) + b"\n")
    (tmp_path / "good.log").write_text("fine 1\nfine 2\n")
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n' + FAST)
    await wait_for(lambda: {"fine 1", "fine 2"} <= set(bodies(sink)))
    await wait_for(lambda: counter(gateway, "otelgw_receiver_filelog_problems_total", receiver="filelog",
                                   reason="invalid_encoding") >= 1)
    for _, record in sink_records(sink):
        record.body.string_value.encode()  # every body arrived as valid UTF-8


async def test_file_deleted_while_read_is_read_to_its_end(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    append(log, ["first"])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n' + FAST)
    await wait_for(lambda: bodies(sink) == ["first"])
    append(log, ["second"])
    log.unlink()
    await wait_for(lambda: bodies(sink) == ["first", "second"])
    (tmp_path / "other.log").write_text("still reading others\n")
    await wait_for(lambda: "still reading others" in bodies(sink))


async def test_file_truncated_while_read_starts_over(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    append(log, [f"old {i}" for i in range(100)])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 100)
    log.write_text("")
    receiver = _receiver(gateway)
    polls = receiver.polls
    await wait_for(lambda: receiver.polls > polls + 1)
    append(log, ["new 1", "new 2"])
    await wait_for(lambda: len(bodies(sink)) == 102)
    assert bodies(sink)[-2:] == ["new 1", "new 2"]


async def test_delete_after_read(tmp_path, gateway, sink):
    log = tmp_path / "batch.log"
    append(log, ["a", "b"])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\ndelete_after_read: true\n' + FAST)
    await wait_for(lambda: not log.exists())
    assert bodies(sink) == ["a", "b"]


async def test_utf16_and_latin1(tmp_path, gateway, sink):
    (tmp_path / "wide.log").write_bytes("grüße\nzweite\n".encode("utf-16-le"))
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\nencoding: utf-16le\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 2)
    assert bodies(sink) == ["grüße", "zweite"]


async def test_exclude_and_resource_and_attributes(tmp_path, gateway, sink):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text("keep\n")
    (logs / "a.log.gz").write_text("skip\n")
    await gateway.start(f'include: ["{logs}/*"]\nexclude: ["{logs}/*.gz"]\nstart_at: beginning\n'
                        'attributes: {team: web}\nresource: {service.name: checkout}\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 1)
    resource, record = sink_records(sink)[0]
    assert record.body.string_value == "keep"
    assert resource == {"service.name": "checkout"}
    assert {kv.key: kv.value.string_value for kv in record.attributes}["team"] == "web"


async def test_more_files_than_max_concurrent_files_are_read_in_turn(tmp_path, gateway, sink):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a-directory.log").mkdir()  # matched by the glob, not a file: skipped without a problem
    for i in range(7):
        (logs / f"{i}.log").write_text(f"file {i} line 1\n")
    await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\nmax_concurrent_files: 2\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 7)
    for i in range(7):
        append(logs / f"{i}.log", [f"file {i} line 2"])
    await wait_for(lambda: len(bodies(sink)) == 14)
    assert sorted(bodies(sink)) == sorted(f"file {i} line {n}" for i in range(7) for n in (1, 2))
    assert counter(gateway, "otelgw_receiver_filelog_problems_total", receiver="filelog", reason="read") == 0


async def test_line_end_pattern_and_nop_encoding(tmp_path, gateway, sink):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_bytes(b"first\npart;second part;\n")
    await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\nencoding: nop\n'
                        "multiline: {line_end_pattern: ';'}\n" + FAST)
    await wait_for(lambda: len(sink_records(sink)) == 2)
    assert [r.body.bytes_value for _, r in sink_records(sink)] == [b"first\npart;", b"second part;"]


async def test_resolved_names_and_exclude_older_than(tmp_path, gateway, sink):
    logs = tmp_path / "logs"
    logs.mkdir()
    target = tmp_path / "real-file.txt"
    target.write_text("through a symlink\n")
    (logs / "link.log").symlink_to(target)
    old = logs / "old.log"
    old.write_text("too old\n")
    os.utime(old, (1_000_000, 1_000_000))
    await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\nexclude_older_than: 1h\n'
                        "include_file_name_resolved: true\ninclude_file_path_resolved: true\n" + FAST)
    await wait_for(lambda: len(sink_records(sink)) == 1)
    _, record = sink_records(sink)[0]
    assert record.body.string_value == "through a symlink"
    assert {kv.key: kv.value.string_value for kv in record.attributes} == {
        "log.file.name": "link.log", "log.file.name_resolved": "real-file.txt",
        "log.file.path_resolved": str(target)}


async def test_refused_batches_are_read_again_nothing_lost(tmp_path, sink):
    from filelog_testlib import Gateway

    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a.log", [f"line {i}" for i in range(50)])
    sink.fail_next(3, message="backend hiccup")
    gateway = Gateway(tmp_path, sink)
    try:
        # without a queue the receiver waits for the backend's answer, so a refusal reaches it
        await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\n' + FAST,
                            exporter_extra="    sending_queue: {enabled: false}\n")
        await wait_for(lambda: len(bodies(sink)) == 50)
        append(logs / "a.log", ["line 50"])
        await wait_for(lambda: len(bodies(sink)) == 51)
        assert bodies(sink) == [f"line {i}" for i in range(51)]
        assert counter(gateway, "otelcol_receiver_refused_log_records_total", receiver="filelog",
                       transport="file") == 150
        assert counter(gateway, "otelgw_receiver_filelog_problems_total", receiver="filelog",
                       reason="delivery") == 3
    finally:
        await gateway.stop()


async def test_each_problem_is_logged_once(tmp_path, gateway, sink, caplog):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(3):
        (logs / f"bad{i}.log").write_bytes(b"\xff\xfe broken " + str(i).encode() + b"\n")
    await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\n' + FAST)
    await wait_for(lambda: len(bodies(sink)) == 3)
    assert counter(gateway, "otelgw_receiver_filelog_problems_total", receiver="filelog",
                   reason="invalid_encoding") == 3
    warnings = [r for r in caplog.records if "invalid utf-8" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_fast_growing_file_does_not_starve_the_others(tmp_path, gateway, sink, monkeypatch):
    from plugins.receivers.filelog import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "_MAX_BYTES_PER_POLL", 64 * 1024)
    logs = tmp_path / "logs"
    logs.mkdir()
    append(logs / "a-busy.log", [f"busy {i:06d}" for i in range(80_000)])  # ~1 MB, read first
    append(logs / "b-quiet.log", ["quiet"])
    await gateway.start(f'include: ["{logs}/*.log"]\nstart_at: beginning\npoll_interval: 30s\n')
    receiver = _receiver(gateway)
    await wait_for(lambda: "quiet" in bodies(sink))  # read in the first poll, the busy file's rest waits
    assert receiver.polls == 1
    busy = next(r for r in receiver.tracker.readers if r.path.endswith("a-busy.log"))
    assert 64 * 1024 <= busy.offset < (logs / "a-busy.log").stat().st_size  # one 256 KiB block, not all of it


async def test_a_file_rotated_away_while_the_backend_refuses_is_still_delivered(tmp_path, sink):
    from filelog_testlib import Gateway

    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    append(log, ["before"])
    gateway = Gateway(tmp_path, sink)
    try:
        await gateway.start(f'include: ["{log}"]\nstart_at: beginning\n' + FAST,
                            exporter_extra="    sending_queue: {enabled: false}\n")
        await wait_for(lambda: bodies(sink) == ["before"])
        sink.fail_next(5, message="backend down")
        append(log, ["written just before the rotation"])
        os.rename(log, logs / "app.log.1")  # not included: only the open descriptor can still read it
        await wait_for(lambda: "written just before the rotation" in bodies(sink))
        assert bodies(sink) == ["before", "written just before the rotation"]
    finally:
        await gateway.stop()


async def test_filter_and_on_error_drop_are_counted_as_dropped(tmp_path, gateway, sink):
    log = tmp_path / "app.log"
    append(log, ["GET /healthz", '{"ok": 1}', "GET /healthz", "not json", '{"ok": 2}'])
    await gateway.start(f'include: ["{tmp_path}/*.log"]\nstart_at: beginning\n' + FAST + """
operators:
  - {type: filter, expr: 'body matches "healthz"'}
  - {type: json_parser, on_error: drop_quiet}
""")
    await wait_for(lambda: len(bodies(sink)) == 2)
    await wait_for(lambda: counter(gateway, "otelgw_component_dropped_items_total", component="filelog",
                                   otel_signal="logs", reason="operator_error") == 1)
    assert bodies(sink) == ['{"ok": 1}', '{"ok": 2}']
    assert counter(gateway, "otelgw_component_dropped_items_total", component="filelog", otel_signal="logs",
                   reason="filtered") == 2
    # a filter doing its job is not a loss; a line the parser failed on and dropped is
    assert gateway.service.telemetry.dropped_items() == 1
