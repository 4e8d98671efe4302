"""Shared fixtures: a registry with the built-in plugins plus in-test plugins, and YAML config helpers."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess


@pytest.fixture(autouse=True)
def _no_gateway_outlives_its_test() -> Iterator[None]:
    """Kill every gateway process a test started and did not stop, also when the test failed."""
    yield
    for gateway in list(GatewayProcess.running):
        gateway.kill()
        GatewayProcess.running.discard(gateway)


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a dedented YAML text to a temporary file and return its path as a string."""
    counter = iter(range(1000))

    def write(text: str) -> str:
        path = tmp_path / f"config-{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return write
