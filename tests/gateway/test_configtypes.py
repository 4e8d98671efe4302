from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from gateway.configtypes import (
    Duration,
    decode,
    decode_and_validate,
    parse_duration,
    raise_if,
    tagged_block,
    validate_tree,
)
from gateway.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5.0), ("200ms", 0.2), ("1m30s", 90.0), ("1h", 3600.0), ("0", 0.0), (3, 3.0), ("1.5s", 1.5),
     ("100us", 1e-4), ("10ns", 1e-8), ("30d", 2_592_000.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "s", "5x", "-1s", "", True, -2, "1s 2s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@dataclass(frozen=True)
class Retry:
    #: whether to retry
    enabled: bool = True
    initial_interval: Duration = 5.0

    def validate(self) -> None:
        if self.initial_interval <= 0:
            raise ConfigError("initial_interval: must be > 0")


@dataclass(frozen=True)
class Sample:
    endpoint: str = "localhost:4317"
    size: int = 10
    ratio: float = 0.5
    mode: Literal["a", "b"] = "a"
    retry: Retry = field(default_factory=Retry)
    headers: dict[str, str] = field(default_factory=dict)
    items: list[Retry] = field(default_factory=list)
    optional: int | None = None

    def validate(self) -> None:
        if self.size < 1:
            raise ConfigError("size: must be >= 1")


def test_decode_overlays_defaults_and_converts_types():
    config = decode(Sample(), {"size": 3, "ratio": 1, "retry": {"initial_interval": "250ms"},
                               "headers": {"x": "y"}, "items": [{"enabled": False}], "optional": 4})
    assert config == Sample(size=3, ratio=1.0, retry=Retry(True, 0.25), headers={"x": "y"},
                            items=[Retry(enabled=False)], optional=4)


def test_null_section_keeps_defaults():
    assert decode(Sample(), None) == Sample()
    assert decode(Sample(), {"retry": None}) == Sample()


def test_decode_collects_every_error_with_paths():
    with pytest.raises(ConfigError) as info:
        decode(Sample(), {"sise": 3, "ratio": "high", "mode": "c", "retry": {"initial_interval": "soon",
                                                                            "enabeld": True},
                          "items": [{"enabled": "yes"}], "headers": []})
    assert info.value.messages == [
        "sise: unknown key; valid keys are: endpoint, headers, items, mode, optional, ratio, retry, size",
        "ratio: expected float, got str 'high'",
        "mode: must be one of 'a', 'b', got 'c'",
        "retry::initial_interval: expected a duration such as '5s', '200ms' or '1m30s', got 'soon'",
        "retry::enabeld: unknown key; valid keys are: enabled, initial_interval",
        "items::0::enabled: expected bool, got str 'yes'",
        "headers: expected a mapping, got list []",
    ]


def test_validate_tree_runs_nested_validators_with_paths():
    config = Sample(size=0, retry=Retry(initial_interval=0), items=[Retry(), Retry(initial_interval=0)])
    assert validate_tree(config, "exporters::x") == [
        "exporters::x::retry::initial_interval: must be > 0",
        "exporters::x::items::1::initial_interval: must be > 0",
        "exporters::x::size: must be >= 1",
    ]


@dataclass(frozen=True)
class WithSecret:
    #: an API key: declared repr=False, so neither repr nor error messages show it
    api_key: str = field(default="", repr=False)
    keys: list[str] = field(default_factory=list, repr=False)


@pytest.mark.parametrize("data", [{"api_key": ["sk_live_123"]}, {"keys": "sk_live_123"}, {"keys": [["sk_live_123"]]}])
def test_secret_fields_are_never_echoed_in_errors(data):
    with pytest.raises(ConfigError) as info:
        decode(WithSecret(), data)
    assert "sk_live_123" not in str(info.value) and "got <hidden>" in str(info.value)
    assert "sk_live_123" not in repr(WithSecret(api_key="sk_live_123"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 10**400, "9" * 400 + "s"])
def test_parse_duration_rejects_values_that_cannot_work(value):
    with pytest.raises(ValueError, match=r"finite|too large"):
        parse_duration(value)


def test_nan_and_infinite_numbers_fail_with_their_key_path(write_yaml):
    # Written as YAML writes them, so this is what an operator's file turns into.
    import yaml

    data = yaml.safe_load("ratio: .nan\nretry: {initial_interval: .inf}\nitems: [{initial_interval: -.inf}]")
    with pytest.raises(ConfigError) as info:
        decode(Sample(), data)
    assert info.value.messages == [
        "ratio: must be a finite number, got nan",
        "retry::initial_interval: duration must be a finite number, got inf",
        "items::0::initial_interval: duration must be a finite number, got -inf",
    ]


@dataclass(frozen=True)
class _Typed:
    name: str = ""
    count: int = 0
    ratio: float = 0.0
    maybe: str | None = None
    wait: Duration = 1.0


def test_env_values_are_strings_for_string_fields_and_typed_for_others():
    from gateway._host.confmap import expand_env

    env = {"S": "s3cr3t #x", "H": "0x1F2E", "N": "0x1F2E", "R": "2.5", "W": "5s"}
    raw = expand_env({"name": "${env:S}", "maybe": "${env:H}", "count": "${env:N}", "ratio": "${env:R}",
                      "wait": "${env:W}"}, env)
    assert decode(_Typed(), raw) == _Typed(name="s3cr3t #x", maybe="0x1F2E", count=7982, ratio=2.5, wait=5.0)


# --- tagged unions, as the Collector writes them: {name, type: T, T: {...}} --------------------------------------

@dataclasses.dataclass(frozen=True)
class _Latency:
    threshold_ms: int = 0

    def validate(self) -> None:
        raise_if([] if self.threshold_ms >= 0 else ["threshold_ms: must be >= 0"])


@dataclasses.dataclass(frozen=True)
class _And:
    #: a Python keyword as the tag's value and block key, and a union nested in a union
    and_sub_policy: list[_Entry] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str = ""
    type: str = ""
    settings: Any = dataclasses.field(default=None, metadata=tagged_block(
        "type", lambda: {"latency": _Latency, "and": _And}))


@dataclasses.dataclass(frozen=True)
class _Policies:
    policies: list[_Entry] = dataclasses.field(default_factory=list)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "slow", "type": "latency", "latency": {"threshold_ms": 5}}, []),
        ({"name": "both", "type": "and", "and": {"and_sub_policy": [{"name": "x", "type": "latency"}]}}, []),
        ({"name": "x", "type": "latency", "latency": {"threshold_ms": -1}},
         ["policies::0::latency::threshold_ms: must be >= 0"]),
        ({"name": "x", "type": "latncy"}, ["policies::0::type: must be one of and, latency; got 'latncy'"]),
        ({"name": "x"}, ["policies::0::type: must be one of and, latency; missing"]),
        ({"name": "x", "type": "latency", "and": {}}, ["policies::0::and: not used when type is 'latency'"]),
        ({"name": "x", "type": "latency", "latency": [1]},
         ["policies::0::latency: expected a mapping, got list [1]"]),
        ({"name": "x", "type": "latency", "typo": 1},
         ["policies::0::typo: unknown key; valid keys are: name, type, and, latency"]),
        ({"name": "x", "type": "and",
          "and": {"and_sub_policy": [{"type": "latency", "latency": {"threshold_ms": "a"}}]}},
         ["policies::0::and::and_sub_policy::0::latency::threshold_ms: expected int, got str 'a'"]),
        ("latency", ["policies::0: expected a mapping, got str 'latency'"]),
    ],
)
def test_tagged_blocks_decode_and_validate_with_paths(entry, expected):
    config, errors = decode_and_validate(_Policies(), {"policies": [entry]})
    assert errors == expected
    if not expected:
        assert type(config.policies[0].settings) is {"latency": _Latency, "and": _And}[entry["type"]]


def test_validate_runs_even_when_another_field_has_the_wrong_type():
    # the batch processor's case: a bad timeout must not hide send_batch_size: -3
    _, errors = decode_and_validate(Sample(), {"size": -3, "ratio": "high"})
    assert errors == ["ratio: expected float, got str 'high'", "size: must be >= 1"]


def test_testing_load_config_decodes_and_validates_like_run():
    from gateway.testing import load_config
    from plugins.processors.batch.factory import factory

    assert load_config(factory, {"timeout": "1s"}).timeout == 1.0
    with pytest.raises(ConfigError) as info:
        load_config(factory, {"timeout": "soon", "send_batch_size": -3})
    assert [m.split(":")[0] for m in info.value.messages] == ["timeout", "send_batch_size"]
