"""Every YAML example in the file_storage README and in tail_sampling's Storage section is a valid config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.registry import load_registry

ROOT = Path(__file__).parents[3]
READMES = [ROOT / "plugins/extensions/file_storage/README.md", ROOT / "plugins/processors/tail_sampling/README.md"]


def storage_examples() -> list[tuple[str, str]]:
    out = []
    for readme in READMES:
        for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", readme.read_text(), re.S)):
            if "file_storage" in block:
                out.append((f"{readme.parent.name}-{n}", block))
    return out


@pytest.mark.parametrize(("name", "block"), storage_examples(), ids=[n for n, _ in storage_examples()])
def test_storage_examples_are_valid_configs(name: str, block: str) -> None:
    config = build_config(yaml.safe_load(block), load_registry())
    assert config is not None


def test_both_readmes_have_a_storage_example() -> None:
    assert {name.split("-")[0] for name, _ in storage_examples()} == {"file_storage", "tail_sampling"}
