"""The YAML examples of a processor's README, validated by the real config loader and built into processors.

Imported by path (the suite runs with --import-mode=importlib): ``sys.path.insert(0, <this directory>)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.component import ComponentID, Kind, Signal
from gateway.testing import Sink, settings_for

ROOT = Path(__file__).resolve().parents[3]


def yaml_blocks(readme: str) -> list[str]:
    text = (ROOT / readme).read_text(encoding="utf-8")
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def load_example(block: str, tmp_path: Path) -> dict[str, Any]:
    """Validate ``block`` (a ``processors:`` fragment) in a whole gateway config; {processor id: config}."""
    processors = list(yaml.safe_load(block)["processors"])
    base = {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {signal: {"receivers": ["otlp"], "processors": processors,
                                           "exporters": ["debug"]} for signal in ("traces", "metrics", "logs")}},
    }
    base_path, example_path = tmp_path / "base.yaml", tmp_path / "example.yaml"
    base_path.write_text(yaml.safe_dump(base), encoding="utf-8")
    example_path.write_text(block, encoding="utf-8")
    config = load_config([str(base_path), str(example_path)], load_registry())
    return {name: config.get(Kind.PROCESSOR, ComponentID.parse(name)) for name in processors}


def build(component: Any, name: str, signal: Signal) -> tuple[Any, Sink]:
    sink = Sink()
    create = component.factory.create_fn(signal)
    return create(settings_for(Kind.PROCESSOR, name, signal), component.config, sink), sink
