"""The README's "See the gateway work" example validates and runs: a tap before and after redaction over it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gateway._host.registry import load_registry
from gateway._host.service import load_config

README = Path(__file__).parents[1] / "README.md"


def section_yaml() -> str:
    text = README.read_text()
    section = text.split("## See the gateway work", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_example_validates(tmp_path: Path) -> None:
    path = tmp_path / "see.yaml"
    path.write_text(section_yaml())
    config = load_config([str(path)], load_registry())
    assert config.admin.endpoint == "127.0.0.1:13134"
    assert [str(p) for p in config.pipelines] == ["traces"]


async def test_the_example_runs_and_its_taps_say_where_they_read(tmp_path: Path) -> None:
    from gateway._host.service import Service
    from gateway._host.tap import tap_points

    raw = yaml.safe_load(section_yaml())
    raw["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "127.0.0.1:0"
    raw["service"]["admin"] = {"endpoint": "127.0.0.1:0", "token_file": str(tmp_path / "token")}
    raw["service"]["telemetry"] = {"metrics": {"address": ""}}
    path = tmp_path / "see.yaml"
    path.write_text(yaml.safe_dump(raw))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        assert [p.not_yet_redacted_by for p in tap_points(service.graph, "batch")] == [["redaction"]]
        assert [p.redacted_by for p in tap_points(service.graph, "redaction")] == [["redaction"]]
    finally:
        await service.shutdown()
