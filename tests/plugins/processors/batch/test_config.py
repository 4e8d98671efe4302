from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.processors.batch.config import Config
from plugins.processors.batch.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["processors"]
    assert load(section["batch"]) == Config(send_batch_size=8192, send_batch_max_size=0, timeout=0.2)
    custom = Config(send_batch_size=1000, send_batch_max_size=1500, timeout=10.0)
    assert load(section["batch/custom"]) == custom
    assert load(section["batch/unbuffered"]) == Config(timeout=0.0)


def test_default_config_validates() -> None:
    assert validate_tree(factory.create_default_config()) == []


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"send_batch_sise": 10})
    assert info.value.messages == [
        "send_batch_sise: unknown key; valid keys are: metadata_cardinality_limit, metadata_keys, "
        "send_batch_max_size, send_batch_size, timeout"
    ]


def test_metadata_keys_are_accepted_and_the_cardinality_limit_checked() -> None:
    assert load({"metadata_keys": ["tenant"]}).metadata_keys == ["tenant"]
    with pytest.raises(ConfigError) as info:
        load({"metadata_keys": ["tenant"], "metadata_cardinality_limit": 0})
    assert info.value.messages == ["metadata_cardinality_limit: must be >= 1, got 0"]


def test_max_size_below_size_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load({"send_batch_size": 100, "send_batch_max_size": 50})
    assert info.value.messages == [
        "send_batch_max_size: must be 0 (no limit) or >= send_batch_size (100), got 50"
    ]


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load({"send_batch_size": -1, "send_batch_max_size": -5})
    assert info.value.messages == ["send_batch_size: must be >= 0", "send_batch_max_size: must be >= 0"]


def test_bad_timeout_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        load({"timeout": "soon"})
    assert info.value.messages[0].startswith("timeout: expected a duration")


def test_factory_shape() -> None:
    assert factory.type == "batch"
    assert factory.signals == ["traces", "metrics", "logs"]
    assert factory.mutates_data is False


def test_registered_through_its_entry_point() -> None:
    [entry_point] = [e for e in entry_points(group="otelgw.plugins") if e.name == "batch_processor"]
    registry = load_registry([entry_point.load()], entry_points=False)
    assert registry.get(Kind.PROCESSOR, "batch") is factory
