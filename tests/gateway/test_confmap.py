from __future__ import annotations

import pytest

from gateway.confmap import expand_env, load_files, merge
from gateway.errors import ConfigError


def test_merge_is_deep_for_mappings_and_replaces_lists():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    override = {"a": {"y": [3], "z": 2}}
    assert merge(base, override) == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${env:HOST}", "example"),
        ("${env:PORT}", 4317),  # a whole-scalar reference is typed like YAML
        ("${env:MISSING:-fallback}", "fallback"),
        ("${env:MISSING}", ""),
        ("http://${env:HOST}:${env:PORT}/v1", "http://example:4317/v1"),
        ("${HOST}", "example"),
        ("cost $$5", "cost $5"),
        ("${env:MISSING:-a}-${env:HOST}", "a-example"),
    ],
)
def test_env_expansion(value, expected):
    assert expand_env({"k": [value]}, {"HOST": "example", "PORT": "4317"}) == {"k": [expected]}


def test_later_files_win(write_yaml):
    first = write_yaml("""
        exporters:
          debug: {verbosity: basic}
        service: {pipelines: {traces: {receivers: [otlp]}}}
    """)
    second = write_yaml("""
        exporters:
          debug: {verbosity: detailed}
    """)
    merged = load_files([first, second], environ={})
    assert merged["exporters"]["debug"]["verbosity"] == "detailed"
    assert merged["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_every_file_error_is_reported(write_yaml, tmp_path):
    broken = write_yaml("receivers: [unclosed")
    scalar = write_yaml("just a string")
    with pytest.raises(ConfigError) as info:
        load_files([str(tmp_path / "missing.yaml"), broken, scalar], environ={})
    messages = info.value.messages
    assert len(messages) == 3
    assert "cannot read config file" in messages[0]
    assert "is not valid YAML" in messages[1]
    assert "the top level must be a mapping, got str" in messages[2]
