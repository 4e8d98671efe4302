from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from plugins.exporters import loki
from plugins.exporters.loki.config import Config, LabelsConfig
from plugins.exporters.loki.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["loki"]) == Config(endpoint="http://loki:3100/loki/api/v1/push")
    assert load(section["loki/full"]) == Config(
        endpoint="https://logs.example.com/loki/api/v1/push",
        encoding="json",
        format="logfmt",
        tenant_id="team-a",
        labels=LabelsConfig(resource={"k8s.namespace.name": "namespace", "deployment.environment": ""},
                            attributes={"http.route": "route"}),
        default_labels_enabled={"exporter": False, "instance": False},
        max_labels=8,
        label_overflow="line",
        structured_metadata=False,
        tls=TLSClientConfig(server_name_override="loki.internal"),
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        timeout=10.0,
        sending_queue=QueueConfig(num_consumers=2),
        retry_on_failure=RetryConfig(max_elapsed_time=120.0),
    )


def test_defaults() -> None:
    config = factory.create_default_config()
    assert (config.encoding, config.format, config.tenant_id, config.max_labels) == ("protobuf", "json", "", 15)
    assert (config.label_overflow, config.structured_metadata) == ("structured_metadata", True)
    assert all(config.default_label(name) for name in ("exporter", "job", "instance", "level"))
    assert config.sending_queue == QueueConfig() and config.retry_on_failure == RetryConfig()


def test_an_endpoint_is_required() -> None:
    assert validate_tree(factory.create_default_config()) == [
        "endpoint: required, e.g. http://loki:3100/loki/api/v1/push"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "http://loki:3100/loki/api/v1/push", "tenant": "a"})
    assert info.value.messages == [
        "tenant: unknown key; valid keys are: auth, compression, default_labels_enabled, encoding, endpoint, "
        "format, headers, label_overflow, labels, max_labels, proxy_url, read_buffer_size, retry_on_failure, "
        "sending_queue, structured_metadata, tenant_id, timeout, tls, write_buffer_size"]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "loki:3100", "encoding": "snappy", "format": "xml", "tenant_id": "a|b",
              "labels": {"resource": {"k8s.pod.name": "pod-name"}, "attributes": {"x": "__x"}},
              "default_labels_enabled": {"host": False}, "max_labels": 0, "label_overflow": "drop",
              "headers": {"Bad Header": "x"}, "timeout": 0})
    assert info.value.messages == [
        "labels::resource::k8s.pod.name: 'pod-name' is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)",
        "labels::attributes::x: label names starting with __ are reserved by Loki",
        "endpoint: must be an http:// or https:// URL with a host, got 'loki:3100'",
        "encoding: must be protobuf or json, got 'snappy'",
        "format: must be json, logfmt or raw, got 'xml'",
        "tenant_id: 'a|b' is not a valid Loki tenant id (up to 150 of A-Z a-z 0-9 ! - _ . * ' ( ))",
        "default_labels_enabled::host: unknown label; valid ones are exporter, job, instance, level",
        "max_labels: must be >= 1, got 0",
        "label_overflow: must be structured_metadata or line, got 'drop'",
        "headers::Bad Header: not a valid HTTP header name",
        "timeout: must be > 0",
    ]


def test_registered_for_logs_only() -> None:
    registry = load_registry([loki], entry_points=False)
    assert registry.get(Kind.EXPORTER, "loki") is factory
    assert factory.signals == ["logs"]
