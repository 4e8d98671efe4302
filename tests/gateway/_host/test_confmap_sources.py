"""Config sources as the Collector reads them: ``${file:}``, ``${env:}``, ``${yaml:}``, bare ``${VAR}``, ``--config``
URIs (``file:``, ``env:``, ``yaml:``), ``--set``, and duplicated keys refused with their line."""

from __future__ import annotations

import pytest

from gateway._host.confmap import Expansion, expand_env, load_files, load_sources, set_option_source
from gateway.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${file:token.txt}", "s3cr3t"),                      # one trailing newline is the file's end
        ("Bearer ${file:token.txt}", "Bearer s3cr3t"),
        ("${yaml:[a, b]}", ["a", "b"]),                       # a whole reference standing for a list
        ("${yaml:{endpoint: x:4317}}", {"endpoint": "x:4317"}),
        ("${env:HOST}:${env:PORT:-4317}", "example:4317"),
        ("${HOST}", "example"),
        ("$${env:HOST}", "${env:HOST}"),                      # $$ escapes the reference
        ("${{ $value }}", "${{ $value }}"),                    # not a reference: a template stays as written
    ],
)
def test_references_anywhere_a_value_goes(tmp_path, monkeypatch, value, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "token.txt").write_text("s3cr3t\n")
    assert expand_env({"k": value}, {"HOST": "example"}) == {"k": expected}


def test_a_file_reference_can_stand_for_a_whole_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exporters.yaml").write_text("debug:\n  verbosity: ${env:LEVEL:-basic}\n")
    assert expand_env({"exporters": "${file:exporters.yaml}"}, {}) == {"exporters": {"debug": {"verbosity": "basic"}}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("${file:nope.txt}", "k: ${file:nope.txt}: cannot read the file"),
        ("${http://example/x}", "k: ${http:...}: unknown config source 'http'; otelgw reads env, file, yaml"),
        ("${env:1BAD}", "k: ${env:1BAD}: '1BAD' is not an environment variable name"),
    ],
)
def test_a_reference_that_cannot_be_resolved_is_an_error_with_its_key(tmp_path, monkeypatch, write_yaml,
                                                                      value, message):
    monkeypatch.chdir(tmp_path)
    path = write_yaml(f"k: '{value}'\n")
    with pytest.raises(ConfigError) as info:
        load_files([path], environ={})
    assert [m for m in info.value.messages if m.startswith(message)], info.value.messages


def test_an_unset_variable_without_default_is_empty_and_named():
    expansion = Expansion()
    assert expand_env({"a": {"b": "${env:NOPE}"}}, {}, expansion) == {"a": {"b": ""}}
    assert expansion.unset == {"a::b": "NOPE"}
    assert expansion.warnings == ["a::b: environment variable NOPE is not set, so the value is empty "
                                  "(write ${env:NOPE:-default} to give a default)"]


def test_config_uris_merge_in_order(tmp_path, write_yaml):
    base = write_yaml("exporters: {debug: {verbosity: basic}}\nprocessors: {batch: {timeout: 1s}}\n")
    merged, _ = load_sources([
        f"file:{base}",
        "env:EXTRA",
        "yaml:processors::batch::send_batch_size: 42",
        set_option_source("exporters::debug::verbosity=detailed"),
    ], environ={"EXTRA": "receivers: {otlp: {}}"})
    assert merged == {"exporters": {"debug": {"verbosity": "detailed"}},
                      "processors": {"batch": {"timeout": "1s", "send_batch_size": 42}},
                      "receivers": {"otlp": {}}}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (["env:NOT_SET"], "config source env:NOT_SET: the environment variable is not set"),
        (["yaml:a: [unclosed"], "config source yaml: is not valid YAML"),
        (["file:/nonexistent/x.yaml"], "cannot read config file '/nonexistent/x.yaml'"),
        (["https://config.example/otelgw.yaml"], "config source https: otelgw reads config from files and from"),
    ],
)
def test_bad_uris_are_clear_errors(sources, message):
    with pytest.raises(ConfigError) as info:
        load_sources(sources, environ={})
    assert info.value.messages[0].startswith(message), info.value.messages


def test_set_needs_key_equals_value():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        set_option_source("processors::batch::timeout")


def test_a_duplicated_key_is_an_error_with_its_line(write_yaml):
    path = write_yaml("""
        exporters:
          debug:
            verbosity: basic
            verbosity: detailed
    """)
    with pytest.raises(ConfigError) as info:
        load_files([path], environ={})
    [message] = info.value.messages
    # line 1 of the file is the empty line after the opening quotes
    assert "line 5, column 5: key 'verbosity' is repeated in this mapping (first on line 4)" in message


def test_a_key_that_overrides_a_merge_key_is_not_a_duplicate(write_yaml):
    path = write_yaml("""
        base: &base {timeout: 1s, size: 2}
        batch: {<<: *base, timeout: 5s}
    """)
    assert load_files([path], environ={})["batch"] == {"timeout": "5s", "size": 2}
