"""Every YAML example in the listed component READMEs is a complete gateway config that loads without an error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
READMES = [
    "plugins/receivers/prometheus/README.md",
    "plugins/receivers/hostmetrics/README.md",
    "plugins/processors/resourcedetection/README.md",
    "plugins/extensions/basicauth/README.md",
    "plugins/extensions/bearertokenauth/README.md",
    "plugins/extensions/headers_setter/README.md",
]
_YAML = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, int, str]]:
    return [(readme, i, block) for readme in READMES
            for i, block in enumerate(_YAML.findall((ROOT / readme).read_text()))]


@pytest.mark.parametrize(("readme", "index", "block"), examples(), ids=lambda v: str(v)[:40])
def test_readme_example_loads(readme: str, index: int, block: str) -> None:
    data = yaml.safe_load(block)
    assert "service" in data, f"{readme} example {index} is not a whole config"
    build_config(data, load_registry())
