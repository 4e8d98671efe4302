from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.exporters.file.config import Config, Rotation
from plugins.exporters.file.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["file"]) == Config(path="./out/traces.jsonl", format="json", rotation=None,
                                           flush_interval=1.0, append=False)
    assert load(section["file/rotating"]) == Config(
        path="/var/lib/otelgw/spans.pb", format="proto", flush_interval=5.0, append=True,
        rotation=Rotation(max_megabytes=10, max_days=3, max_backups=5, localtime=True))
    assert load(section["file/default_rotation"]) == Config(
        path="spans.json", flush_interval=0.0,
        rotation=Rotation(max_megabytes=100, max_days=0, max_backups=100, localtime=False))


def test_missing_path_is_the_only_default_error() -> None:
    assert validate_tree(factory.create_default_config()) == ["path: is required"]
    with pytest.raises(ConfigError) as info:
        load({"format": "proto"})
    assert info.value.messages == ["path: is required"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"path": "x", "compression": "zstd"})
    assert info.value.messages == [
        "compression: unknown key; valid keys are: append, flush_interval, format, path, rotation"
    ]


def test_unknown_rotation_key_has_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        load({"path": "x", "rotation": {"max_size": 1}})
    assert info.value.messages == [
        "rotation::max_size: unknown key; valid keys are: localtime, max_backups, max_days, max_megabytes"
    ]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"path": "x", "format": "yaml",
              "rotation": {"max_megabytes": 0, "max_days": -1, "max_backups": -2}})
    assert info.value.messages == [
        "rotation::max_megabytes: must be > 0",
        "rotation::max_days: must be >= 0",
        "rotation::max_backups: must be >= 0",
        "format: must be json or proto, got 'yaml'",
    ]


def test_factory_shape() -> None:
    assert factory.type == "file"
    assert factory.signals == ["traces", "metrics", "logs"]


def test_registered_through_its_entry_point() -> None:
    [entry_point] = [e for e in entry_points(group="otelgw.plugins") if e.name == "file_exporter"]
    registry = load_registry([entry_point.load()], entry_points=False)
    assert registry.get(Kind.EXPORTER, "file") is factory
