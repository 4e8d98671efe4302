from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.exporters.load_balancing.config import (
    Config,
    DnsResolverConfig,
    ProtocolConfig,
    ResolverConfig,
    StaticResolverConfig,
)
from plugins.exporters.load_balancing.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: Any) -> Config:
    config = decode(factory.create_default_config(), data)
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(data)
    return info.value.messages


STATIC = {"static": {"hostnames": ["a:4317"]}}


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    hostnames = ["sampler-0:4317", "sampler-1:4317", "sampler-2:4317"]
    assert load(section["loadbalancing"]) == Config(
        protocol=ProtocolConfig(otlp={"tls": {"insecure": True}, "timeout": "1s"}),
        resolver=ResolverConfig(static=StaticResolverConfig(hostnames)))
    minimal = load(section["load_balancing/minimal"])
    assert minimal == Config(resolver=ResolverConfig(static=StaticResolverConfig(["10.0.0.5:4317"])))
    backend = load(section["loadbalancing"]).backend("sampler-1:4317")
    assert (backend.endpoint, backend.tls, backend.timeout) == ("sampler-1:4317", TLSClientConfig(insecure=True), 1.0)


def test_the_collectors_name_is_an_alias() -> None:
    registry = load_registry()
    assert registry.get(factory.kind, "loadbalancing") is registry.get(factory.kind, "load_balancing")


def test_a_resolver_is_required() -> None:
    assert validate_tree(factory.create_default_config()) == [
        "resolver: set exactly one of static (a list of backends) or dns (a name to resolve)"]
    assert errors_of({"resolver": {"static": {"hostnames": []}}}) == [
        "resolver::static::hostnames: at least one backend host:port is required"]


def test_only_one_resolver_may_be_set() -> None:
    assert errors_of({"resolver": {**STATIC, "dns": {"hostname": "sampler"}}}) == [
        "resolver: set exactly one of static or dns, not both"]


def test_dns_defaults_are_the_collectors() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["exporters"]
    assert load(section["load_balancing/dns_minimal"]) == Config(
        resolver=ResolverConfig(dns=DnsResolverConfig(hostname="sampler.local", port=4317, interval=5.0,
                                                      timeout=1.0)))
    assert load(section["load_balancing/dns"]) == Config(
        protocol=ProtocolConfig(otlp={"tls": {"insecure": True}}),
        resolver=ResolverConfig(dns=DnsResolverConfig(
            "otelgw-gateway.observability.svc.cluster.local", 14317, 30.0, 0.5)))
    # The Collector's port is a string: "4317" is the same config as 4317 (hot reload compares configs).
    assert load({"resolver": {"dns": {"hostname": "s", "port": "4317"}}}) == load(
        {"resolver": {"dns": {"hostname": "s"}}})
    assert load({"resolver": {"dns": {"hostname": "fd00::5"}}}).resolver.dns.hostname == "fd00::5"  # type: ignore[union-attr]


def test_invalid_dns_values_give_exact_messages() -> None:
    assert errors_of({"resolver": {"dns": {}}}) == [
        "resolver::dns::hostname: required, e.g. otelgw-gateway.observability.svc.cluster.local"]
    assert errors_of({"resolver": {"dns": {"hostname": "sampler:4317", "port": 0, "interval": 0,
                                           "timeout": "0s"}}}) == [
        "resolver::dns::hostname: must be a host name or IP address without a port (the port goes in port), "
        "got 'sampler:4317'",
        "resolver::dns::port: must be between 1 and 65535, got 0",
        "resolver::dns::interval: must be > 0",
        "resolver::dns::timeout: must be > 0"]
    assert errors_of({"resolver": {"dns": {"hostname": "bad host", "port": "http"}}}) == [
        "resolver::dns::hostname: must be a host name or IP address without a port (the port goes in port), "
        "got 'bad host'",
        "resolver::dns::port: must be between 1 and 65535, got 'http'"]
    assert errors_of({"resolver": {"dns": {"hostname": "s", "port": 70000, "interval": "soon"}}}) == [
        "resolver::dns::interval: expected a duration such as '5s', '200ms' or '1m30s', got 'soon'"]
    assert errors_of({"resolver": {"dns": {"hostname": "s", "port": 70000}}}) == [
        "resolver::dns::port: must be between 1 and 65535, got 70000"]
    assert errors_of({"resolver": {"dns": {"hostname": "s", "port": True}}}) == [
        "resolver::dns::port: expected int or str, got bool True"]


def test_typos_name_the_valid_keys() -> None:
    assert errors_of({"resolver": {"statik": {}}}) == [
        "resolver::statik: unknown key; valid keys are: dns, static"]
    assert errors_of({"resolver": {"dns": {"hostname": "s", "intervall": "1s"}}}) == [
        "resolver::dns::intervall: unknown key; valid keys are: hostname, interval, port, timeout"]
    assert errors_of({"resolver": {"k8s": {"service": "lb-svc"}}}) == [
        "resolver::k8s: unknown key; valid keys are: dns, static"]
    assert errors_of({"resolver": STATIC, "protocol": {"otlp": {"tsl": {}}}}) == [
        "protocol::otlp::tsl: unknown key; valid keys are: auth, authority, balancer_name, compression, endpoint, "
        "headers, keepalive, read_buffer_size, retry_on_failure, sending_queue, timeout, tls, wait_for_ready, "
        "write_buffer_size"]


def test_invalid_values_give_exact_messages() -> None:
    assert errors_of({"routing_key": "span", "resolver": {"static": {"hostnames": ["a:4317", "no pe"]}},
                      "protocol": {"otlp": {"timeout": 0, "endpoint": "x:1"}}}) == [
        "routing_key: must be one of attributes, metric, resource, service, streamID, traceID, got 'span'",
        "resolver::static::hostnames::1: invalid endpoint 'no pe': expected host:port, e.g. 0.0.0.0:4317",
        "protocol::otlp::endpoint: set by the resolver; remove it"]
    assert errors_of({"routing_key": "attributes", "resolver": STATIC}) == [
        "routing_attributes: required with routing_key: attributes"]
    assert errors_of({"resolver": STATIC, "protocol": {"otlp": {"timeout": 0, "compression": "zstd"}}}) == [
        "protocol::otlp::compression: zstd is not available over gRPC here "
        "(grpcio compresses with gzip and deflate only); use gzip, deflate or none, "
        "or send zstd over OTLP/HTTP (the otlp_http exporter)",
        "protocol::otlp::timeout: must be > 0"]


def test_factory_shape() -> None:
    assert factory.type == "load_balancing" and factory.aliases == ("loadbalancing",)
    assert factory.signals == ["traces", "metrics", "logs"]
