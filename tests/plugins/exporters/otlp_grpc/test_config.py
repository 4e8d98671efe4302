from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway import parse_grpc_endpoint as parse_endpoint
from gateway._host.registry import load_registry
from gateway.component import Kind
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.helpers.exporter import QueueConfig, RetryConfig
from plugins.exporters import otlp_grpc
from plugins.exporters.otlp_grpc.config import Config
from plugins.exporters.otlp_grpc.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["otlp"]) == Config(endpoint="collector:4317")
    assert load(section["otlp_grpc/full"]) == Config(
        endpoint="https://collector.example.com:4317",
        tls=TLSClientConfig(insecure=False, server_name_override="collector.internal"),
        headers={"X-Api-Key": "secret"},
        compression="none",
        timeout=10.0,
        sending_queue=QueueConfig(enabled=True, num_consumers=4, queue_size=50),
        retry_on_failure=RetryConfig(enabled=True, initial_interval=1.0, randomization_factor=0.1,
                                     multiplier=2.0, max_interval=10.0, max_elapsed_time=60.0),
    )
    assert load(section["otlp/plaintext"]) == Config(
        endpoint="http://localhost:4317", tls=TLSClientConfig(insecure=True),
        sending_queue=QueueConfig(enabled=False), retry_on_failure=RetryConfig(enabled=False))


def test_defaults_are_the_collectors() -> None:
    config = factory.create_default_config()
    assert (config.compression, config.timeout) == ("gzip", 5.0)
    assert config.sending_queue == QueueConfig(enabled=True, num_consumers=10, queue_size=1000)
    assert config.retry_on_failure == RetryConfig(True, 5.0, 0.5, 1.5, 30.0, 300.0)


def test_endpoint_is_required() -> None:
    assert validate_tree(factory.create_default_config()) == ["endpoint: required, e.g. collector:4317"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "collector:4317", "endpont": "x"})
    assert info.value.messages == [
        "endpont: unknown key; valid keys are: auth, authority, balancer_name, compression, endpoint, headers, "
        "keepalive, read_buffer_size, retry_on_failure, sending_queue, timeout, tls, wait_for_ready, "
        "write_buffer_size"
    ]


def test_unknown_nested_key_has_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "collector:4317", "tls": {"ca_pem": "x"}})
    assert info.value.messages[0].startswith("tls::ca_pem: unknown key; valid keys are: ca_file, cert_file")


def test_invalid_values_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load({
            "endpoint": "collector", "compression": "zstd", "timeout": 0, "headers": {"bad key": "v"},
            "tls": {"cert_file": str(tmp_path / "missing.pem")},
            "sending_queue": {"num_consumers": 0}, "retry_on_failure": {"multiplier": 0.5},
        })
    assert info.value.messages == [
        "tls::key_file: must be set together with cert_file",
        "sending_queue::num_consumers: must be >= 1, got 0",
        "retry_on_failure::multiplier: must be >= 1, got 0.5",
        "endpoint: invalid endpoint 'collector': expected host:port, e.g. 0.0.0.0:4317",
        "headers::bad key: not a valid gRPC metadata key (use letters, digits, -_.)",
        "compression: zstd is not available over gRPC here (grpcio compresses with gzip and deflate "
        "only); use gzip, deflate or none, or send zstd over OTLP/HTTP (the otlp_http exporter)",
        "timeout: must be > 0",
    ]


def test_insecure_skip_verify_is_refused_for_tls_but_harmless_for_plaintext() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "collector:4317", "tls": {"insecure_skip_verify": True}})
    assert info.value.messages == [
        "tls::insecure_skip_verify: not supported by the gRPC client; set tls::ca_file to the server's CA "
        "or self-signed certificate instead"]
    load({"endpoint": "collector:4317", "tls": {"insecure": True, "insecure_skip_verify": True}})


def test_bad_duration_names_its_key() -> None:
    with pytest.raises(ConfigError) as info:
        load({"endpoint": "collector:4317", "timeout": "5 seconds"})
    assert info.value.messages == [
        "timeout: expected a duration such as '5s', '200ms' or '1m30s', got '5 seconds'"]


@pytest.mark.parametrize(("endpoint", "insecure", "expected"), [
    ("collector:4317", False, ("collector:4317", True)),
    ("collector:4317", True, ("collector:4317", False)),
    ("http://collector:4317", False, ("collector:4317", False)),
    ("https://collector:4317/", True, ("collector:4317", True)),
    ("[::1]:4317", True, ("[::1]:4317", False)),
    ("dns:///collector:4317", False, ("dns:///collector:4317", True)),
    ("unix:/run/otel.sock", True, ("unix:/run/otel.sock", False)),
])
def test_endpoint_forms(endpoint: str, insecure: bool, expected: tuple[str, bool]) -> None:
    assert parse_endpoint(endpoint, insecure) == expected


@pytest.mark.parametrize("endpoint", ["collector", ":4317", "http://collector", "collector:99999"])
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(endpoint, False)


def test_registered_as_otlp_grpc_and_otlp() -> None:
    registry = load_registry([otlp_grpc], entry_points=False)
    assert registry.get(Kind.EXPORTER, "otlp") is factory
    assert registry.get(Kind.EXPORTER, "otlp_grpc") is factory
    assert factory.signals == ["traces", "metrics", "logs"]
