from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.extensions.health_check.config import Config
from plugins.extensions.health_check.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["extensions"]
    assert load(section["health_check"]) == Config(endpoint="localhost:13133", path="/")
    assert load(section["health_check/custom"]) == Config(endpoint="127.0.0.1:13134", path="/health/status")
    assert load(section["health_check/collector"]) == Config(
        endpoint="[::1]:13133",
        check_collector_pipeline={"enabled": False, "interval": "5m", "exporter_failure_threshold": 5})


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"port": 13133})
    assert info.value.messages == [
        "port: unknown key; valid keys are: auth, check_collector_pipeline, cors, endpoint, include_metadata, "
        "max_request_body_size, path, response_headers, tls"
    ]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "localhost", "path": "health"})
    assert info.value.messages == [
        "endpoint: invalid endpoint 'localhost': expected host:port, e.g. 0.0.0.0:4317",
        "path: must start with '/', got 'health'",
    ]


def test_factory_shape() -> None:
    assert factory.type == "health_check"
    assert factory.kind is Kind.EXTENSION
    assert factory.create_extension is not None
    assert validate_tree(factory.create_default_config()) == []


def test_registered_through_its_entry_point() -> None:
    [entry_point] = [e for e in entry_points(group="otelgw.plugins") if e.name == "health_check_extension"]
    registry = load_registry([entry_point.load()], entry_points=False)
    assert registry.get(Kind.EXTENSION, "health_check") is factory
