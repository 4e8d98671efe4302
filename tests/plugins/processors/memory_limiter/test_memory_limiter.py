from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal, consume, count_items
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError, OverloadedError, status_for
from gateway.testing import Sink, make_host, make_logs, make_traces, settings_for
from gateway.wirebytes import WireBatch
from plugins.processors.memory_limiter import memory
from plugins.processors.memory_limiter.config import Config
from plugins.processors.memory_limiter.factory import factory

TESTDATA = Path(__file__).parent / "testdata"
MIB = 1024 * 1024


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["processors"]
    assert load(section["memory_limiter"]) == Config(check_interval=1.0, limit_mib=4000, spike_limit_mib=800)
    assert load(section["memory_limiter/percentage"]) == Config(
        check_interval=5.0, limit_percentage=80, spike_limit_percentage=25)


def test_default_config_needs_interval_and_limit_as_in_the_collector() -> None:
    assert validate_tree(factory.create_default_config()) == [
        "check_interval: must be > 0 (for example 1s)", "limit_mib: one of limit_mib or limit_percentage must be > 0"]


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"limit_mb": 10})
    assert info.value.messages == ["limit_mb: unknown key; valid keys are: check_interval, limit_mib, "
                                   "limit_percentage, retry_after, spike_limit_mib, spike_limit_percentage"]


@pytest.mark.parametrize(("data", "message"), [
    ({"check_interval": "1s", "limit_mib": 100, "spike_limit_mib": 100},
     "spike_limit_mib: must be smaller than limit_mib (100), got 100"),
    ({"check_interval": "1s", "limit_percentage": 120}, "limit_percentage: must be between 0 and 100, got 120"),
    ({"check_interval": "1s", "limit_percentage": 50, "spike_limit_percentage": 60},
     "spike_limit_percentage: must be between 0 and limit_percentage (50), got 60"),
])
def test_invalid_values_give_exact_messages(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(data)
    assert info.value.messages == [message]


def test_limits_from_mib_and_from_percentage() -> None:
    limits = memory.Limits(1000, 0, 0, 0)
    assert (limits.hard, limits.soft) == (1000 * MIB, 800 * MIB)  # spike defaults to 20% of the limit
    limits = memory.Limits(1000, 100, 0, 0)
    assert limits.soft == 900 * MIB
    limits = memory.Limits(0, 0, 50, 10, total=2000 * MIB)
    assert (limits.hard, limits.soft) == (1000 * MIB, 800 * MIB)


def test_cgroup_limits_v2_then_v1(tmp_path: Path) -> None:
    assert memory.container_limit_bytes(tmp_path) is None
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("536870912\n")
    assert memory.container_limit_bytes(tmp_path) == 512 * MIB
    (tmp_path / "memory.max").write_text("max\n")  # v2 without a limit: fall through to v1
    assert memory.container_limit_bytes(tmp_path) == 512 * MIB
    (tmp_path / "memory.max").write_text("268435456\n")
    assert memory.container_limit_bytes(tmp_path) == 256 * MIB


def test_resident_memory_is_measured() -> None:
    assert memory.resident_bytes() > 10 * MIB


async def send(processor: Any, signal: Signal, batch: Any, as_bytes: bool) -> None:
    """As a parse, or as the bytes the otlp receiver hands on (``consume_wire``)."""
    if as_bytes:
        await processor.consume_wire(WireBatch(signal, [batch.SerializeToString()], [count_items(signal, batch)]))
    else:
        await consume(processor, signal, batch)


@pytest.mark.parametrize("as_bytes", [False, True], ids=["parsed", "bytes"])
async def test_refuses_above_the_soft_limit_counts_and_recovers(monkeypatch: pytest.MonkeyPatch,
                                                                as_bytes: bool) -> None:
    resident = {"now": 100 * MIB}
    monkeypatch.setattr(memory, "resident_bytes", lambda: resident["now"])
    monkeypatch.setattr(memory, "release_memory", lambda: None)
    telemetry = Telemetry()
    config = load({"check_interval": "10s", "limit_mib": 200, "spike_limit_mib": 50, "retry_after": "2s"})
    sink = Sink()
    traces = factory.create_traces(settings_for(Kind.PROCESSOR, "memory_limiter", Signal.TRACES, telemetry),  # type: ignore[misc]
                                   config, sink)
    logs = factory.create_logs(settings_for(Kind.PROCESSOR, "memory_limiter", Signal.LOGS, telemetry),  # type: ignore[misc]
                               config, sink)
    await traces.start(make_host(telemetry))
    await logs.start(make_host(telemetry))
    assert traces.guard is logs.guard  # one guard per id, shared by every pipeline
    try:
        await send(traces, Signal.TRACES, make_traces(5), as_bytes)
        resident["now"] = 160 * MIB  # over the soft limit (150), under the hard one
        traces.guard.check()
        with pytest.raises(OverloadedError) as info:
            await send(traces, Signal.TRACES, make_traces(7), as_bytes)
        with pytest.raises(OverloadedError):
            await send(logs, Signal.LOGS, make_logs(3), as_bytes)
        mapping = status_for(info.value)
        assert (mapping.grpc_code.name, mapping.http_status, mapping.retry_after) == ("RESOURCE_EXHAUSTED", 429, 2.0)
        assert telemetry.registry.get_sample_value(
            "otelcol_processor_refused_spans_total", {"processor": "memory_limiter"}) == 7
        assert telemetry.registry.get_sample_value(
            "otelcol_processor_refused_log_records_total", {"processor": "memory_limiter"}) == 3
        resident["now"] = 120 * MIB
        traces.guard.check()
        await send(traces, Signal.TRACES, make_traces(2), as_bytes)
        assert sink.item_count(Signal.TRACES) == 7
        assert telemetry.registry.get_sample_value(
            "otelcol_processor_incoming_items_total", {"processor": "memory_limiter", "otel_signal": "traces"}) == 14
    finally:
        await traces.shutdown()
        await logs.shutdown()
    assert traces.guard._task is None  # the last pipeline to stop stops the checks
