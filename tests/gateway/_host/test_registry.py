from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway import Factory, Kind, hookimpl
from gateway._host.registry import load_registry
from gateway.errors import PluginError


def plugin(*factories):
    return SimpleNamespace(otelgw_component_factories=hookimpl(lambda: list(factories)))


def test_duplicate_type_names_both_plugins():
    first = Factory("same", Kind.PROCESSOR, dict)
    second = Factory("other", Kind.PROCESSOR, dict, aliases=("same",))
    with pytest.raises(PluginError) as info:
        load_registry([plugin(first), plugin(second)], entry_points=False)
    message = str(info.value)
    assert "processor type 'same' is registered twice" in message
    assert message.count("by plugin") == 2


def test_same_type_name_in_different_kinds_is_allowed():
    registry = load_registry([plugin(Factory("x", Kind.RECEIVER, dict), Factory("x", Kind.EXPORTER, dict))],
                             entry_points=False)
    assert registry.types(Kind.RECEIVER) == ["x"] == registry.types(Kind.EXPORTER)


def test_a_hook_returning_garbage_is_an_error():
    with pytest.raises(PluginError, match=r"not a gateway\.Factory"):
        load_registry([plugin("nonsense")], entry_points=False)


def test_builtin_components_come_from_entry_points():
    registry = load_registry()
    assert registry.providers[(Kind.EXPORTER, "debug")] == "debug_exporter"


# --------------------------------------------------------------------------- a third-party plugin, installed

PLUGIN_SOURCE = '''
from dataclasses import dataclass

from gateway import Factory, Kind, Processor, Stability, hookimpl


@dataclass(frozen=True)
class Config:
    #: text appended to every span name
    suffix: str = "!"


class SuffixProcessor(Processor):
    def process_traces(self, batch):
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name += self.config.suffix
        return batch


@hookimpl
def otelgw_component_factories():
    return [Factory("suffix", Kind.PROCESSOR, Config, create_traces=SuffixProcessor,
                    stability=Stability.ALPHA, mutates_data=True)]
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch):
    """A distribution on sys.path with an ``otelgw.plugins`` entry point: what ``pip install`` leaves behind."""
    (tmp_path / "otelgw_suffix.py").write_text(PLUGIN_SOURCE)
    dist = tmp_path / "otelgw_suffix-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otelgw-suffix\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[otelgw.plugins]\nsuffix = otelgw_suffix\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_third_party_plugin_is_discovered_and_listed(installed_plugin):
    registry = load_registry()
    assert registry.providers[(Kind.PROCESSOR, "suffix")] == "suffix"
    env = {"PYTHONPATH": str(installed_plugin), "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "gateway", "components"], capture_output=True, text=True,
                         env=env, check=True).stdout
    row = next(line for line in out.splitlines() if line.startswith("processor") and " suffix " in line)
    assert row.split() == ["processor", "suffix", "alpha", "traces", "-", "suffix"]


async def test_third_party_plugin_runs_in_a_pipeline(installed_plugin, write_yaml):
    from gateway._host.service import Service
    from gateway.testing import make_traces
    from tests.gateway.conftest import fake_plugin

    path = write_yaml(textwrap.dedent("""
        receivers: {fakerecv: }
        processors: {suffix: {suffix: "-seen"}}
        exporters: {fakeexp: }
        service:
          telemetry: {metrics: {address: "127.0.0.1:0"}}
          pipelines: {traces: {receivers: [fakerecv], processors: [suffix], exporters: [fakeexp]}}
    """))
    service = Service.from_files([path], extra_plugins=[fake_plugin])
    await service.start()
    try:
        await service.graph.find(Kind.RECEIVER, "fakerecv").push(make_traces(spans=2))
        exported = service.graph.find(Kind.EXPORTER, "fakeexp")
        assert [s.name for s in exported.spans()] == ["operation-0-seen", "operation-1-seen"]
    finally:
        assert await service.shutdown() == []
