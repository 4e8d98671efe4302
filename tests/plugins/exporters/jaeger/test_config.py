from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway import OtlpGrpcConfig, OtlpGrpcExporter
from gateway._host.registry import load_registry
from gateway.component import Kind, Signal
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from gateway.testing import settings_for
from plugins.exporters import jaeger
from plugins.exporters.jaeger.config import Config, with_default_port
from plugins.exporters.jaeger.exporter import JaegerGrpcExporter
from plugins.exporters.jaeger.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["jaeger"]) == Config(endpoint="jaeger-collector")
    assert load(section["jaeger/full"]) == Config(
        protocol="grpc",
        endpoint="https://jaeger.example.com:14250",
        tls=TLSClientConfig(server_name_override="jaeger.internal"),
        headers={"Authorization": "Bearer token"},
        compression="none",
        timeout=10.0,
        sending_queue=QueueConfig(num_consumers=2, queue_size=50),
        retry_on_failure=RetryConfig(initial_interval=1.0, max_elapsed_time=60.0),
    )
    assert load(section["jaeger/otlp"]) == Config(protocol="otlp", endpoint="jaeger-collector",
                                                  tls=TLSClientConfig(insecure=True))


def test_defaults() -> None:
    config = factory.create_default_config()
    assert (config.protocol, config.compression, config.timeout) == ("grpc", "gzip", 5.0)
    assert config.sending_queue == QueueConfig()
    assert config.retry_on_failure == RetryConfig()


@pytest.mark.parametrize(("endpoint", "port", "expected"), [
    ("jaeger", 14250, "jaeger:14250"),
    ("jaeger:4000", 14250, "jaeger:4000"),
    ("http://jaeger", 14250, "http://jaeger:14250"),
    ("https://jaeger:443/", 14250, "https://jaeger:443"),
    ("[::1]", 4317, "[::1]:4317"),
    ("10.0.0.7", 4317, "10.0.0.7:4317"),
    ("dns:///jaeger:14250", 14250, "dns:///jaeger:14250"),
    ("unix:/run/jaeger.sock", 14250, "unix:/run/jaeger.sock"),
])
def test_the_protocols_default_port_fills_in_a_missing_port(endpoint: str, port: int, expected: str) -> None:
    assert with_default_port(endpoint, port) == expected


def test_each_protocol_has_its_default_port() -> None:
    assert Config(endpoint="jaeger").target == "jaeger:14250"
    assert Config(protocol="otlp", endpoint="jaeger").target == "jaeger:4317"


def test_otlp_protocol_reuses_the_otlp_grpc_settings() -> None:
    config = load({"protocol": "otlp", "endpoint": "jaeger", "headers": {"x-team": "a"}, "compression": "none",
                   "tls": {"insecure": True}, "timeout": "2s", "retry_on_failure": {"enabled": False}})
    assert config.otlp_grpc() == OtlpGrpcConfig(
        endpoint="jaeger:4317", headers={"x-team": "a"}, compression="none", tls=TLSClientConfig(insecure=True),
        timeout=2.0, retry_on_failure=RetryConfig(enabled=False))
    settings = settings_for(Kind.EXPORTER, "jaeger", Signal.TRACES)
    assert isinstance(factory.create_traces(settings, config), OtlpGrpcExporter)  # type: ignore[misc]
    grpc_config = load({"endpoint": "jaeger", "tls": {"insecure": True}})
    exporter = factory.create_traces(settings, grpc_config)  # type: ignore[misc]
    assert isinstance(exporter, JaegerGrpcExporter)
    assert (exporter.target, exporter.secure) == ("jaeger:14250", False)


def test_an_endpoint_is_required() -> None:
    assert validate_tree(factory.create_default_config()) == ["endpoint: required, e.g. jaeger-collector:14250"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "jaeger", "collector_endpoint": "x"})
    assert info.value.messages == [
        "collector_endpoint: unknown key; valid keys are: auth, authority, balancer_name, compression, endpoint, "
        "headers, keepalive, protocol, read_buffer_size, retry_on_failure, sending_queue, timeout, tls, "
        "wait_for_ready, write_buffer_size"]


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"protocol": "thrift", "endpoint": ":14250", "compression": "zstd", "timeout": 0,
              "headers": {"bad key": "x"}, "tls": {"insecure_skip_verify": True},
              "sending_queue": {"num_consumers": 0}})
    assert info.value.messages == [
        "sending_queue::num_consumers: must be >= 1, got 0",
        "protocol: must be grpc or otlp, got 'thrift'",
        "endpoint: ':14250' has no host; expected host:port, e.g. collector:4317",
        "headers::bad key: not a valid gRPC metadata key (use letters, digits, -_.)",
        "compression: zstd is not available over gRPC here (grpcio compresses with gzip and deflate "
        "only); use gzip, deflate or none, or send zstd over OTLP/HTTP (the otlp_http exporter)",
        "timeout: must be > 0",
    ]


def test_registered_for_traces_only() -> None:
    registry = load_registry([jaeger], entry_points=False)
    assert registry.get(Kind.EXPORTER, "jaeger") is factory
    assert factory.signals == ["traces"]
