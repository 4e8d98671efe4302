from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.exporters import prometheus
from plugins.exporters.prometheus.config import Config, ResourceToTelemetry
from plugins.exporters.prometheus.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["prometheus"]) == Config()
    assert load(section["prometheus/full"]) == Config(
        endpoint="1.2.3.4:1234", namespace="test_space",
        const_labels={"label1": "value1", "another_label": "spaced value"}, send_timestamps=True,
        metric_expiration=10800.0, enable_open_metrics=False, add_metric_suffixes=False,
        resource_to_telemetry_conversion=ResourceToTelemetry(enabled=True), target_info=False, max_series=500)


def test_defaults() -> None:
    config = Config()
    assert (config.endpoint, config.metric_expiration, config.send_timestamps) == ("localhost:8889", 300.0, False)
    assert config.add_metric_suffixes and config.target_info and config.enable_open_metrics


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"expiration": "1m"})
    assert info.value.messages == [
        "expiration: unknown key; valid keys are: add_metric_suffixes, auth, const_labels, cors, "
        "enable_open_metrics, endpoint, include_metadata, max_request_body_size, max_series, metric_expiration, "
        "namespace, resource_to_telemetry_conversion, response_headers, send_timestamps, target_info, tls"]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "localhost", "const_labels": {"bad-label": "x", "__reserved": "y"}, "namespace": "1x",
              "metric_expiration": 0, "max_series": -1, "tls": {"cert_file": "/nonexistent.pem"}})
    assert info.value.messages == [
        "tls::cert_file: cert_file and key_file are required for a TLS server",
        "endpoint: invalid endpoint 'localhost': expected host:port, e.g. 0.0.0.0:4317",
        "const_labels::bad-label: not a valid Prometheus label name",
        "const_labels::__reserved: not a valid Prometheus label name",
        "namespace: not a valid Prometheus metric name prefix: '1x'",
        "metric_expiration: must be > 0",
        "max_series: must be >= 0 (0 = no limit)",
    ]


def test_registered_for_metrics() -> None:
    registry = load_registry([prometheus], entry_points=False)
    assert registry.get(Kind.EXPORTER, "prometheus") is factory
    assert factory.signals == ["metrics"]
