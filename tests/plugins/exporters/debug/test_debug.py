from __future__ import annotations

import io
import json

import pytest

from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.testing import make_logs, make_metrics, make_traces, settings_for
from plugins.exporters.debug.config import Config
from plugins.exporters.debug.exporter import DebugExporter


def exporter(signal: Signal, **config) -> tuple[DebugExporter, io.StringIO]:
    stream = io.StringIO()
    return DebugExporter(settings_for(Kind.EXPORTER, "debug", signal), Config(**config), stream), stream


def test_config_from_yaml_and_errors():
    assert decode(Config(), {"verbosity": "detailed", "sampling_initial": 5}) == Config("detailed", 5, 1)
    with pytest.raises(ConfigError, match="verbosityy: unknown key"):
        decode(Config(), {"verbosityy": "basic"})
    assert validate_tree(Config(verbosity="loud", sampling_thereafter=0)) == [
        "verbosity: must be basic, normal or detailed, got 'loud'", "sampling_thereafter: must be >= 1"]


async def test_basic_prints_one_summary_line_per_batch():
    debug, stream = exporter(Signal.TRACES)
    await debug.consume_traces(make_traces(spans=7))
    assert json.loads(stream.getvalue()) == {"exporter": "debug", "signal": "traces", "#spans": 7, "#resources": 1}


async def test_normal_prints_one_line_per_item():
    debug, stream = exporter(Signal.LOGS, verbosity="normal")
    await debug.consume_logs(make_logs(records=3, body="queue full"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[1].strip() == "INFO queue full"


async def test_detailed_dumps_otlp_json_with_hex_ids():
    debug, stream = exporter(Signal.METRICS, verbosity="detailed")
    await debug.consume_metrics(make_metrics(points=2, name="calls"))
    dump = json.loads(stream.getvalue().split("\n", 1)[1])
    assert dump["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["name"] == "calls"


async def test_sampling_limits_output_but_counts_everything():
    debug, stream = exporter(Signal.TRACES, sampling_initial=2, sampling_thereafter=3)
    debug._clock = lambda: 100.0  # all within one second
    for _ in range(10):
        await debug.consume_traces(make_traces(spans=1))
    assert len(stream.getvalue().splitlines()) == 2 + 2  # the first 2, then every 3rd of the other 8
    debug._clock = lambda: 101.0
    await debug.consume_traces(make_traces(spans=1))
    assert len(stream.getvalue().splitlines()) == 5  # a new second starts over
    exposition = debug.settings.telemetry.root.exposition().decode()
    assert 'otelcol_exporter_sent_spans_total{exporter="debug"} 11.0' in exposition
