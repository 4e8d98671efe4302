from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.helpers.exporter import RetryConfig
from plugins.exporters import prometheus_remote_write
from plugins.exporters.prometheus_remote_write.config import Config, Enabled, RemoteWriteQueue, TargetInfo
from plugins.exporters.prometheus_remote_write.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["prometheusremotewrite"]) == Config(endpoint="http://prometheus:9090/api/v1/write")
    assert load(section["prometheus_remote_write/full"]) == Config(
        endpoint="https://mimir.example.com/api/v1/push", tls=TLSClientConfig(insecure_skip_verify=True),
        headers={"X-Scope-OrgID": "tenant-1"}, timeout=10.0, namespace="gw", external_labels={"cluster": "eu-1"},
        add_metric_suffixes=False, resource_to_telemetry_conversion=Enabled(enabled=True),
        target_info=TargetInfo(enabled=False), remote_write_queue=RemoteWriteQueue(queue_size=100, num_consumers=2),
        retry_on_failure=RetryConfig(initial_interval=0.1, max_interval=1.0, max_elapsed_time=30.0),
        max_batch_size_bytes=500_000, send_metadata=True)


def test_defaults_are_the_collectors() -> None:
    config = Config()
    assert config.remote_write_queue == RemoteWriteQueue(enabled=True, queue_size=10000, num_consumers=5)
    assert (config.retry_on_failure.initial_interval, config.retry_on_failure.max_interval,
            config.retry_on_failure.max_elapsed_time) == (0.05, 0.2, 60.0)
    assert config.target_info.enabled and not config.resource_to_telemetry_conversion.enabled
    assert validate_tree(config) == ["endpoint: required, e.g. http://prometheus:9090/api/v1/write"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "http://p/api/v1/write", "wal": {"directory": "/tmp"}})
    assert info.value.messages == [
        "wal: unknown key; valid keys are: add_metric_suffixes, auth, compression, endpoint, external_labels, "
        "headers, max_batch_size_bytes, namespace, proxy_url, read_buffer_size, remote_write_queue, "
        "resource_to_telemetry_conversion, retry_on_failure, send_metadata, target_info, timeout, tls, "
        "write_buffer_size"]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "prometheus:9090", "headers": {"Content-Encoding": "gzip", "X-A": "a\nb"},
              "external_labels": {"bad-name": "x", "empty": ""}, "namespace": "9x", "timeout": 0,
              "compression": "gzip",
              "remote_write_queue": {"queue_size": 0, "num_consumers": 0},
              "retry_on_failure": {"max_elapsed_time": 0}, "max_batch_size_bytes": 10})
    assert info.value.messages == [
        "endpoint: must be an http:// or https:// URL with a host, got 'prometheus:9090'",
        "headers::Content-Encoding: reserved by the remote-write protocol; it cannot be set",
        "headers::X-A: value must not contain line breaks",
        "compression: the body is already snappy-compressed by the protocol; leave compression out (or none)",
        "timeout: must be > 0",
        "external_labels::bad-name: not a valid Prometheus label name",
        "external_labels::empty: must not be empty (remote write forbids empty values)",
        "namespace: not a valid Prometheus metric name prefix: '9x'",
        "remote_write_queue::queue_size: must be >= 1",
        "remote_write_queue::num_consumers: must be >= 1",
        "retry_on_failure::max_elapsed_time: must be > 0 (retries need a cap)",
        "max_batch_size_bytes: must be >= 1024",
    ]


def test_registered_as_prometheus_remote_write_and_prometheusremotewrite() -> None:
    registry = load_registry([prometheus_remote_write], entry_points=False)
    assert registry.get(Kind.EXPORTER, "prometheusremotewrite") is factory
    assert registry.get(Kind.EXPORTER, "prometheus_remote_write") is factory
    assert factory.signals == ["metrics"]
