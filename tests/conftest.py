"""Shared fixtures: a registry with the built-in plugins plus in-test plugins, and YAML config helpers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a dedented YAML text to a temporary file and return its path as a string."""
    counter = iter(range(1000))

    def write(text: str) -> str:
        path = tmp_path / f"config-{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return write
