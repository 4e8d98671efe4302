from __future__ import annotations

import time

import pytest

from gateway._host.confmap import expand_env, load_files, merge
from gateway.errors import ConfigError


def test_merge_is_deep_for_mappings_and_replaces_lists():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    override = {"a": {"y": [3], "z": 2}}
    assert merge(base, override) == {"a": {"x": 1, "y": [3], "z": 2}, "b": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${env:HOST}", "example"),
        ("${env:PORT}", "4317"),  # a whole-scalar reference stays the string (typed only for a non-str field)
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


def test_a_whole_scalar_reference_keeps_the_string_and_its_yaml_reading():
    expanded = expand_env({"a": "${env:A}", "b": "${env:B}", "c": "${env:C}"},
                          {"A": "s3cr3t #x", "B": "0x1F2E", "C": "4317"})
    assert expanded == {"a": "s3cr3t #x", "b": "0x1F2E", "c": "4317"}
    assert (expanded["a"].typed, expanded["b"].typed, expanded["c"].typed) == ("s3cr3t", 7982, 4317)


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
    assert "is not valid YAML" in messages[1] and "line 1, column" in messages[1]
    assert "the top level must be a mapping, got str" in messages[2]


def _billion_laughs(levels: int = 9) -> str:
    """Each anchor repeats the one before nine times: 600 bytes that stand for 9**9 scalars."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_quickly(write_yaml):
    path = write_yaml(_billion_laughs())
    started = time.process_time()
    with pytest.raises(ConfigError, match="expands to more than 100000 nodes through its aliases"):
        load_files([path])
    assert time.process_time() - started < 0.5  # a generous bound: expanding it takes minutes and gigabytes


def test_a_merge_key_bomb_is_refused(write_yaml):
    lines = ["m0: &m0 {k0: 1, k1: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    with pytest.raises(ConfigError, match="through its aliases"):
        load_files([write_yaml("\n".join(lines) + "\n")])


@pytest.mark.parametrize("text", ["a: " + "[" * 5000 + "]" * 5000, "a: " + "{b: " * 5000 + "1" + "}" * 5000])
def test_deep_nesting_is_refused_before_the_stack_runs_out(write_yaml, text):
    with pytest.raises(ConfigError, match="nesting is deeper than 100 levels"):
        load_files([write_yaml(text)])


@pytest.mark.parametrize("text", ["a: &a [*a]", "a: &a {b: {c: *a}}"])
def test_an_alias_inside_its_own_anchor_is_refused(write_yaml, text):
    with pytest.raises(ConfigError, match="a cycle"):
        load_files([write_yaml(text)])


def test_an_environment_value_is_read_with_the_same_limits():
    bomb = "{" + _billion_laughs().replace("\n", ", ") + "}"
    started = time.process_time()
    # Not YAML within the limits, so it stays the string it is, unexpanded.
    assert expand_env({"k": "${env:BOMB}"}, {"BOMB": bomb}) == {"k": bomb}
    assert time.process_time() - started < 0.5


def test_ordinary_anchors_aliases_and_merge_keys_still_work(write_yaml):
    path = write_yaml("""
        defaults: &defaults {timeout: 5s, retry: {enabled: true}}
        a: {<<: *defaults, endpoint: x}
        b: [*defaults, *defaults]
    """)
    assert load_files([path]) == {
        "defaults": {"timeout": "5s", "retry": {"enabled": True}},
        "a": {"timeout": "5s", "retry": {"enabled": True}, "endpoint": "x"},
        "b": [{"timeout": "5s", "retry": {"enabled": True}}] * 2,
    }


def test_a_yaml_syntax_error_does_not_print_the_line(write_yaml):
    broken = write_yaml("""
        extensions:
          bearertokenauth: {token: "hunter2-very-secret-token"
        receivers: {}
    """)
    with pytest.raises(ConfigError) as info:
        load_files([broken], environ={})
    [message] = info.value.messages
    assert "hunter2" not in message and "line " in message
