"""The container operator on real files under a /var/log/pods-shaped tree: Docker json-file, CRI-O and
containerd lines, P/F reassembly (also across polls), and the k8s resource attributes from the path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from filelog_testlib import sink_records, wait_for

FAST = "poll_interval: 20ms\nforce_flush_period: 100ms\n"
UID = "49cc7c1f-d370-2c40-b268-6ea7486091d6"


def pod_log(root: Path, container: str = "api") -> Path:
    directory = root / "pods" / f"shop_checkout-7d9f_{UID}" / container
    directory.mkdir(parents=True)
    return directory / "0.log"


def receiver_yaml(root: Path, extra: str = "") -> str:
    return (f'include: ["{root}/pods/*/*/*.log"]\nstart_at: beginning\ninclude_file_path: true\n' + FAST
            + "operators:\n  - type: container\n" + extra)


def by_body(sink) -> dict[str, tuple[dict, dict]]:
    out = {}
    for resource, record in sink_records(sink):
        attributes = {kv.key: kv.value.string_value for kv in record.attributes}
        out[record.body.string_value] = (resource, attributes, record)
    return out


EXPECTED_RESOURCE = {"k8s.pod.name": "checkout-7d9f", "k8s.pod.uid": UID, "k8s.container.name": "api",
                     "k8s.container.restart_count": "0", "k8s.namespace.name": "shop"}

FORMATS = {
    "docker": [json.dumps({"log": "hello from docker\n", "stream": "stdout", "time": "2024-03-30T08:31:20.545192187Z"}),
               json.dumps({"log": "part one-", "stream": "stderr", "time": "2024-03-30T08:31:21Z"}),
               json.dumps({"log": "part two\n", "stream": "stderr", "time": "2024-03-30T08:31:22Z"})],
    "crio": ["2024-04-13T07:59:37.505201169-05:00 stdout F hello from crio",
             "2024-04-13T07:59:38.000000000-05:00 stderr P part one-",
             "2024-04-13T07:59:39.000000000-05:00 stderr F part two"],
    "containerd": ["2023-06-22T10:27:25.813799277Z stdout F hello from containerd",
                   "2023-06-22T10:27:26Z stderr P part one-",
                   "2023-06-22T10:27:27Z stderr F part two"],
}
FIRST_TIME = {"docker": 1711787480_545192187, "crio": 1713013177_505201169, "containerd": 1687429645_813799277}


@pytest.mark.parametrize("fmt", list(FORMATS))
async def test_formats_partials_and_k8s_metadata(tmp_path, gateway, sink, fmt):
    log = pod_log(tmp_path)
    log.write_text("\n".join(FORMATS[fmt]) + "\n")
    await gateway.start(receiver_yaml(tmp_path))
    await wait_for(lambda: len(sink_records(sink)) == 2)
    got = by_body(sink)
    assert set(got) == {f"hello from {fmt}", "part one-part two"}
    resource, attributes, record = got[f"hello from {fmt}"]
    assert resource == EXPECTED_RESOURCE
    assert attributes["log.iostream"] == "stdout"
    assert record.time_unix_nano == FIRST_TIME[fmt]
    _, attributes, _ = got["part one-part two"]
    assert attributes["log.iostream"] == "stderr"
    if fmt != "docker":
        assert attributes["logtag"] == "F"


async def test_partial_line_across_polls_is_joined_and_checkpointed_before_it(tmp_path, gateway, sink):
    log = pod_log(tmp_path)
    log.write_text("2023-06-22T10:27:26Z stdout P first half-\n")
    await gateway.start(receiver_yaml(tmp_path))
    from gateway.component import Kind
    receiver = gateway.service.graph.find(Kind.RECEIVER, "filelog")
    polls = receiver.polls
    await wait_for(lambda: receiver.polls > polls + 2)
    reader = receiver.tracker.active[0]
    assert reader.offset > 0 and reader.committed == 0  # the held partial is not checkpointed past
    with log.open("a") as f:
        f.write("2023-06-22T10:27:27Z stdout F second half\n")
    await wait_for(lambda: len(sink_records(sink)) == 1)
    assert sink_records(sink)[0][1].body.string_value == "first half-second half"
    await wait_for(lambda: reader.committed == log.stat().st_size)


async def test_unparseable_lines_are_kept_and_counted(tmp_path, gateway, sink):
    log = pod_log(tmp_path)
    log.write_text("garbage that is no container line\n2023-06-22T10:27:25Z stdout F fine\n")
    await gateway.start(receiver_yaml(tmp_path))
    await wait_for(lambda: len(sink_records(sink)) == 2)
    assert set(by_body(sink)) == {"garbage that is no container line", "fine"}
    value = gateway.service.telemetry.registry.get_sample_value(
        "otelgw_receiver_filelog_operator_errors_total", {"receiver": "filelog", "operator": "container"})
    assert value == 1


async def test_json_app_logs_inside_containers(tmp_path, gateway, sink):
    log = pod_log(tmp_path)
    app = json.dumps({"level": "error", "msg": "payment failed", "ts": "2024-01-01T00:00:00Z"})
    log.write_text(json.dumps({"log": app + "\n", "stream": "stdout", "time": "2024-03-30T08:31:20Z"}) + "\n")
    parser = ("  - type: json_parser\n    severity: {parse_from: attributes.level}\n"
              "    timestamp: {parse_from: attributes.ts, layout: '%Y-%m-%dT%H:%M:%SZ'}\n")
    await gateway.start(receiver_yaml(tmp_path, parser))
    await wait_for(lambda: len(sink_records(sink)) == 1)
    resource, record = sink_records(sink)[0]
    assert resource["k8s.pod.name"] == "checkout-7d9f"
    assert record.severity_number == 17 and record.severity_text == "error"
    assert record.time_unix_nano == 1704067200 * 10**9
    assert {kv.key: kv.value.string_value for kv in record.attributes}["msg"] == "payment failed"


async def test_a_partial_line_whose_end_never_comes_is_passed_on(tmp_path, gateway, sink, monkeypatch):
    from plugins.receivers.filelog import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "_HELD_FLUSH_S", 0.3)
    log = pod_log(tmp_path)
    log.write_text("2023-06-22T10:27:26Z stdout P the runtime died mid-line\n")
    await gateway.start(receiver_yaml(tmp_path))
    await wait_for(lambda: len(sink_records(sink)) == 1)
    resource, record = sink_records(sink)[0]
    assert record.body.string_value == "the runtime died mid-line"
    assert resource["k8s.container.name"] == "api"
    from gateway.component import Kind
    reader = gateway.service.graph.find(Kind.RECEIVER, "filelog").tracker.readers[0]
    await wait_for(lambda: reader.committed == log.stat().st_size)  # delivered, so checkpointed past it
