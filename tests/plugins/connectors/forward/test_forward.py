"""The forward connector hands batches on unchanged, per signal; its README's example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway._host.registry import load_registry
from gateway._host.service import Service, load_config
from gateway._host.telemetry import Telemetry
from gateway.component import Signal
from gateway.testing import Sink, make_logs, make_metrics, make_traces, settings_for
from plugins.connectors.forward.config import Config
from plugins.connectors.forward.factory import factory

README = Path(__file__).resolve().parents[4] / "plugins/connectors/forward/README.md"


@pytest.mark.parametrize(("signal", "make"), [(Signal.TRACES, make_traces), (Signal.METRICS, make_metrics),
                                              (Signal.LOGS, make_logs)])
async def test_batches_pass_unchanged(signal: Signal, make: object) -> None:
    sink = Sink()
    connector = factory.connectors[(signal, signal)](settings_for(factory.kind, "forward", signal, Telemetry()),
                                                     Config(), sink)
    batch = make(3)  # type: ignore[operator]
    await getattr(connector, f"consume_{signal.value}")(batch)
    assert sink.batches[signal] == [batch]
    assert {pair[0] for pair in factory.connectors} == set(Signal)


async def test_readme_example_runs(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert example is not None
    path = tmp_path / "forward.yaml"
    # Free ports only: the receiver and the self-metrics endpoint on port 0.
    path.write_text(example.group(1).replace("localhost:4317", "127.0.0.1:0")
                    + "  telemetry: {metrics: {address: '127.0.0.1:0'}}\n")
    config = load_config([str(path)], load_registry())
    assert {str(p) for p in config.pipelines} == {"traces", "traces/sampled"}
    service = Service(config, load_registry(), [str(path)])
    await service.start()
    assert await service.shutdown() == []
