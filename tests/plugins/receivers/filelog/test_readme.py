"""The README's examples: every YAML block loads and validates as written; the JSON example runs against a real
file (its paths and endpoint pointed at a tmp dir and a real OTLP sink) and parses what the README says."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway._host.service import Service, load_config

sys.path.insert(0, str(Path(__file__).parent))
from filelog_testlib import sink_records, wait_for

README = Path(__file__).resolve().parents[4] / "plugins" / "receivers" / "filelog" / "README.md"
BLOCKS = re.findall(r"```yaml\n(.*?)```", README.read_text(), re.DOTALL)


def test_the_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS, ids=[f"example {i}" for i in range(len(BLOCKS))])
def test_readme_example_validates(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # create_directory: true may create what an example names; keep it in tmp
    text = block.replace("/var/lib/otelgw/", f"{tmp_path}/")
    path = tmp_path / "example.yaml"
    path.write_text(text)
    config = load_config([str(path)], load_registry())
    assert any(kind.value == "receiver" and cid.type == "filelog" for kind, cid in config.components)


async def test_json_example_runs_as_documented(tmp_path, sink):
    config = yaml.safe_load(BLOCKS[0])
    logs = tmp_path / "myapp"
    logs.mkdir()
    (logs / "app.log").write_text('{"timestamp": "2026-12-06T04:00:00.250Z", "level": "WARNING", '
                                  '"message": "slow request", "path": "/api/orders"}\n')
    (logs / "old.gz").write_text("not read\n")
    receiver = config["receivers"]["filelog"]
    receiver["include"] = [str(logs / "*.log")]
    receiver["exclude"] = [str(logs / "*.gz")]
    receiver["poll_interval"] = "20ms"
    config["exporters"]["otlp"] = {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}
    config["service"]["telemetry"] = {"metrics": {"address": ""}}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        await wait_for(lambda: len(sink_records(sink)) == 1)
    finally:
        await service.shutdown()
    _, record = sink_records(sink)[0]
    assert record.severity_number == 13 and record.severity_text == "WARNING"
    assert record.time_unix_nano == 1796529600_250_000_000
    attributes = {kv.key: kv.value.string_value for kv in record.attributes}
    assert attributes["message"] == "slow request" and attributes["log.file.name"] == "app.log"
