from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind, Signal
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import settings_for
from plugins.exporters import otlp_http
from plugins.exporters.otlp_http.config import Config
from plugins.exporters.otlp_http.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["otlphttp"]) == Config(endpoint="http://collector:4318")
    assert load(section["otlp_http/full"]) == Config(
        endpoint="https://collector.example.com:4318/otlp/",
        traces_endpoint="https://traces.example.com/api/v1/push",
        tls=TLSClientConfig(insecure_skip_verify=True),
        headers={"Authorization": "Bearer token"},
        compression="none",
        encoding="json",
        timeout=30.0,
        sending_queue=QueueConfig(enabled=True, num_consumers=2, queue_size=10),
        retry_on_failure=RetryConfig(initial_interval=0.5, max_interval=5.0, max_elapsed_time=0.0),
    )
    assert load(section["otlphttp/logs_only"]) == Config(logs_endpoint="http://loki:3100/otlp/v1/logs")


def test_signal_urls_are_appended_to_endpoint_or_overridden() -> None:
    config = Config(endpoint="http://collector:4318", metrics_endpoint="http://m:9090/otlp/v1/metrics")
    assert config.url(Signal.TRACES) == "http://collector:4318/v1/traces"
    assert config.url(Signal.METRICS) == "http://m:9090/otlp/v1/metrics"
    assert Config(endpoint="https://x/otlp/").url(Signal.LOGS) == "https://x/otlp/v1/logs"
    assert Config(traces_endpoint="http://t/v1/traces").url(Signal.LOGS) == ""


def test_defaults_are_the_collectors() -> None:
    config = factory.create_default_config()
    assert (config.compression, config.encoding, config.timeout) == ("gzip", "proto", 5.0)
    assert config.sending_queue == QueueConfig()
    assert config.retry_on_failure == RetryConfig()


def test_an_endpoint_is_required() -> None:
    assert validate_tree(factory.create_default_config()) == [
        "endpoint: required (or traces_endpoint, metrics_endpoint, logs_endpoint), e.g. http://collector:4318"]


def test_a_signal_without_url_fails_at_create_naming_the_key() -> None:
    config = load({"logs_endpoint": "http://loki:3100/otlp/v1/logs"})
    with pytest.raises(ConfigError) as info:
        factory.create_traces(settings_for(Kind.EXPORTER, "otlphttp/logs_only", Signal.TRACES), config)  # type: ignore[misc]
    assert info.value.messages == [
        "exporters::otlphttp/logs_only::traces_endpoint: required to export traces when endpoint is not set"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "http://c:4318", "protocol": "http/protobuf"})
    assert info.value.messages == [
        "protocol: unknown key; valid keys are: auth, compression, encoding, endpoint, headers, logs_endpoint, "
        "metrics_endpoint, proxy_url, read_buffer_size, retry_on_failure, sending_queue, timeout, tls, "
        "traces_endpoint, write_buffer_size"
    ]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({
            "endpoint": "collector:4318", "traces_endpoint": "ftp://x/v1/traces", "compression": "lz4",
            "encoding": "protobuf", "timeout": 0, "headers": {"Bad Header": "x", "X-Ok": "a\nb"},
            "retry_on_failure": {"randomization_factor": 2},
        })
    assert info.value.messages == [
        "retry_on_failure::randomization_factor: must be between 0 and 1, got 2",
        "endpoint: must be an http:// or https:// URL with a host, got 'collector:4318'",
        "traces_endpoint: must be an http:// or https:// URL with a host, got 'ftp://x/v1/traces'",
        "headers::Bad Header: not a valid HTTP header name",
        "headers::X-Ok: value must not contain line breaks",
        "compression: must be one of gzip, zstd, snappy, deflate or none, got 'lz4'",
        "timeout: must be > 0",
        "encoding: must be proto or json, got 'protobuf'",
    ]


def test_registered_as_otlp_http_and_otlphttp() -> None:
    registry = load_registry([otlp_http], entry_points=False)
    assert registry.get(Kind.EXPORTER, "otlphttp") is factory
    assert registry.get(Kind.EXPORTER, "otlp_http") is factory
    assert factory.signals == ["traces", "metrics", "logs"]
