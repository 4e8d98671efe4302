from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from gateway.configtypes import Duration, decode, parse_duration, validate_tree
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
