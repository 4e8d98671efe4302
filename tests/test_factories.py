"""Conformance of every registered factory (built-in and installed third-party): the component contract
(docs/writing-plugins.md).

- the default config validates (or fails only on the keys a user must always set);
- create → shutdown without start works, for every supported signal;
- start → consume one batch per supported signal → shutdown works.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway._host.registry import load_registry
from gateway._host.telemetry import Telemetry
from gateway.component import ComponentID, Kind, Signal, consume
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, make_host, make_logs, make_metrics, make_traces, settings_for

REGISTRY = load_registry()
FACTORIES = [f for f, _ in REGISTRY.unique_factories()]

#: Keys a user must always set: the only validate() errors allowed on a default config.
REQUIRED_KEYS = {"otlp_grpc": ["endpoint"], "otlp_http": ["endpoint"], "file": ["path"],
                 "prometheus_remote_write": ["endpoint"], "tail_sampling": ["policies"],
                 "jaeger": ["endpoint"], "loki": ["endpoint"], "load_balancing": ["resolver"],
                 "memory_limiter": ["check_interval", "limit_mib"], "file_storage": ["directory"],
                 "bearertokenauth": ["token"], "basicauth": ["htpasswd"], "headers_setter": ["headers"],
                 "resource": ["attributes"],
                 "filelog": ["include"],
                 "prometheus": ["config::scrape_configs"], "hostmetrics": ["scrapers"],
                 "resourcedetection": ["detectors"], "attributes": ["actions"]}

#: Config that makes a component runnable in a test: loopback port 0, a temporary file, an unreachable backend
#: with retries off so shutdown does not wait for it.
UNREACHABLE = "127.0.0.1:9"


def runnable_overrides(type_name: str, tmp_path: Path, kind: Kind | None = None) -> dict[str, Any]:
    """Overrides by type, or by ``kind:type`` where two kinds share a type name (the prometheus receiver)."""
    overrides: dict[str, Any] = {
        "otlp": {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}}},
        "health_check": {"endpoint": "127.0.0.1:0"},
        "file": {"path": str(tmp_path / "out.jsonl")},
        "filelog": {"include": [str(tmp_path / "*.log")]},
        "otlp_grpc": {"endpoint": UNREACHABLE, "tls": {"insecure": True}, "timeout": "1s",
                      "retry_on_failure": {"enabled": False}},
        "otlp_http": {"endpoint": f"http://{UNREACHABLE}", "timeout": "1s", "retry_on_failure": {"enabled": False}},
        "jaeger": {"endpoint": UNREACHABLE, "tls": {"insecure": True}, "timeout": "1s",
                   "retry_on_failure": {"enabled": False}},
        "loki": {"endpoint": f"http://{UNREACHABLE}/loki/api/v1/push", "timeout": "1s",
                 "retry_on_failure": {"enabled": False}},
        "prometheus": {"endpoint": "127.0.0.1:0"},
        "prometheus_remote_write": {"endpoint": f"http://{UNREACHABLE}/api/v1/write", "timeout": "1s",
                                    "retry_on_failure": {"enabled": False}},
        "tail_sampling": {"policies": [{"name": "all", "type": "always_sample"}]},
        "memory_limiter": {"check_interval": "1s", "limit_mib": 100_000},
        "file_storage": {"directory": str(tmp_path / "storage"), "create_directory": True},
        "bearertokenauth": {"token": "t"},
        "resource": {"attributes": [{"key": "k", "value": "v", "action": "upsert"}]},
        "basicauth": {"htpasswd": {"inline": "user:pass"}},
        "headers_setter": {"headers": [{"key": "X-Tenant", "value": "a"}]},
        "attributes": {"actions": [{"key": "k", "value": "v", "action": "upsert"}]},
        "load_balancing": {"resolver": {"static": {"hostnames": [UNREACHABLE]}},
                           "protocol": {"otlp": {"tls": {"insecure": True}, "timeout": "1s",
                                                 "retry_on_failure": {"enabled": False}}}},
        "receiver:prometheus": {"config": {"scrape_configs": [
            {"job_name": "unreachable", "static_configs": [{"targets": [UNREACHABLE]}]}]}},
        "hostmetrics": {"scrapers": {"load": None}},
        "resourcedetection": {"detectors": ["env"]},
    }
    if kind is not None and f"{kind.value}:{type_name}" in overrides:
        return overrides[f"{kind.value}:{type_name}"]  # type: ignore[no-any-return]
    return overrides.get(type_name, {})  # type: ignore[no-any-return]


BATCHES = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}


def ids(factory) -> str:
    return f"{factory.kind.value}:{factory.type}"


@pytest.mark.parametrize("factory", FACTORIES, ids=ids)
def test_default_config_validates(factory):
    errors = validate_tree(factory.create_default_config())
    allowed = REQUIRED_KEYS.get(factory.type, [])
    assert all(any(message.startswith(key) for key in allowed) for message in errors), errors


def create(factory, signal: Signal | None, config: Any, out_signal: Signal | None = None):
    settings = settings_for(factory.kind, factory.type, signal, Telemetry())
    if factory.kind is Kind.EXTENSION:
        return factory.create_extension(settings, config)
    if factory.kind is Kind.EXPORTER:
        return factory.create_fn(signal)(settings, config)
    if factory.kind is Kind.CONNECTOR:
        return factory.connectors[(signal, out_signal)](settings, config, Sink())
    return factory.create_fn(signal)(settings, config, Sink())


def signal_pairs(factory) -> list[tuple[Signal | None, Signal | None]]:
    if factory.kind is Kind.EXTENSION:
        return [(None, None)]
    if factory.kind is Kind.CONNECTOR:
        return list(factory.connectors)
    return [(s, None) for s in Signal if factory.create_fn(s) is not None]


@pytest.mark.parametrize("factory", FACTORIES, ids=ids)
async def test_create_then_shutdown_without_start(factory, tmp_path):
    config = decode(factory.create_default_config(), runnable_overrides(factory.type, tmp_path, factory.kind))
    for signal, out_signal in signal_pairs(factory):
        component = create(factory, signal, config, out_signal)
        await asyncio.wait_for(component.shutdown(), 10)


@pytest.mark.parametrize("factory", FACTORIES, ids=ids)
async def test_start_consume_shutdown(factory, tmp_path):
    config = decode(factory.create_default_config(), runnable_overrides(factory.type, tmp_path, factory.kind))
    assert validate_tree(config) == []
    host = make_host()
    for signal, out_signal in signal_pairs(factory):
        component = create(factory, signal, config, out_signal)
        await asyncio.wait_for(component.start(host), 10)
        try:
            if signal is not None and factory.kind is not Kind.RECEIVER:
                await asyncio.wait_for(consume(component, signal, BATCHES[signal]()), 10)
        finally:
            await asyncio.wait_for(component.shutdown(), 15)


def test_every_builtin_component_has_a_readme():
    root = Path(__file__).resolve().parent.parent / "plugins"
    for factory in FACTORIES:
        module = REGISTRY.plugin_manager.get_plugin(REGISTRY.providers[(factory.kind, factory.type)])
        folder = Path(getattr(module, "__file__", "")).parent
        if root in folder.parents:
            assert (folder / "README.md").is_file(), f"{factory.type} has no README.md"


def test_component_ids_parse():
    assert ComponentID.parse("otlp_http/backup") == ComponentID("otlp_http", "backup")
    assert str(ComponentID.parse("otlp")) == "otlp"
