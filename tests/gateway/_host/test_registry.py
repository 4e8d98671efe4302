from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway import CliCommand, Factory, Kind, hookimpl
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


# --------------------------------------------------------------------------- plugins that cannot work fail loudly

def _install(tmp_path: Path, monkeypatch, module: str, source: str) -> None:
    """A distribution ``otelgw-broken 2.0`` on sys.path whose entry point ``broken`` is ``module``."""
    (tmp_path / f"{module}.py").write_text(source)
    dist = tmp_path / "otelgw_broken-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otelgw-broken\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text(f"[otelgw.plugins]\nbroken = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_misspelled_hook_of_an_installed_plugin_is_a_start_up_error(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "otelgw_misspelled", PLUGIN_SOURCE.replace(
        "def otelgw_component_factories():", "def otelgw_component_factory():"))
    with pytest.raises(PluginError) as info:
        load_registry()
    message = str(info.value)
    assert "plugin 'broken' (module otelgw_misspelled, distribution otelgw-broken 2.0)" in message
    assert "unknown hook 'otelgw_component_factory'" in message
    assert "did you mean 'otelgw_component_factories'?" in message


def test_a_misspelled_hook_fails_the_command_line_with_the_plugin_named(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "otelgw_misspelled", PLUGIN_SOURCE.replace(
        "def otelgw_component_factories():", "def otelgw_component_factory():"))
    result = subprocess.run([sys.executable, "-m", "gateway", "components"], capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path), "PATH": ""}, timeout=60)
    assert result.returncode == 3
    assert "plugin error: plugin 'broken' (module otelgw_misspelled" in result.stderr
    assert "otelgw_component_factory" in result.stderr


def test_an_unknown_hook_registered_directly_is_an_error_too():
    @hookimpl
    def otelgw_service_startd(host):
        pass

    with pytest.raises(PluginError, match=r"unknown hook 'otelgw_service_startd': did you mean "
                                          r"'otelgw_service_started'\?"):
        load_registry([SimpleNamespace(otelgw_service_startd=otelgw_service_startd)], entry_points=False)


def test_a_hook_not_marked_hookimpl_is_an_error():
    def otelgw_component_factories():
        return [Factory("x", Kind.PROCESSOR, dict)]

    with pytest.raises(PluginError, match="otelgw_component_factories is not marked @hookimpl"):
        load_registry([SimpleNamespace(otelgw_component_factories=otelgw_component_factories)],
                      entry_points=False)


def test_a_hook_with_arguments_the_spec_lacks_names_the_plugin():
    @hookimpl
    def otelgw_service_started(host, extra):
        pass

    with pytest.raises(PluginError, match="otelgw_service_started") as info:
        load_registry([SimpleNamespace(otelgw_service_started=otelgw_service_started)], entry_points=False)
    assert "extra" in str(info.value)


def test_an_entry_point_that_fails_to_import_names_the_entry_point_and_the_distribution(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "otelgw_needs_more", "import my_plugin_dependency\n")
    with pytest.raises(PluginError) as info:
        load_registry()
    message = str(info.value)
    assert "plugin entry point broken = 'otelgw_needs_more' (distribution otelgw-broken 2.0)" in message
    assert "No module named 'my_plugin_dependency'" in message


# --------------------------------------------------------------------------- plugins add otelgw subcommands

COMMAND_PLUGIN = '''
from gateway import CliCommand, hookimpl


def add_arguments(parser):
    parser.add_argument("--name", required=True)


def run(args):
    print(f"hello {args.name}")
    return 7


@hookimpl
def otelgw_cli_commands():
    return [CliCommand("NAME", "say hello", add_arguments, run)]
'''


def _otelgw(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path), "PATH": ""}, timeout=60)


def test_a_plugin_adds_a_command_to_otelgw(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "otelgw_hello", COMMAND_PLUGIN.replace("NAME", "hello"))
    assert "say hello" in _otelgw(tmp_path, "--help").stdout
    result = _otelgw(tmp_path, "hello", "--name", "ann")
    assert (result.returncode, result.stdout) == (7, "hello ann\n")
    assert load_registry().commands["hello"].help == "say hello"


def test_a_plugin_command_named_like_a_built_in_one_is_an_error(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "otelgw_hello", COMMAND_PLUGIN.replace("NAME", "validate"))
    result = _otelgw(tmp_path, "components")
    assert result.returncode == 3
    assert "command 'validate' of a plugin clashes with the built-in otelgw validate" in result.stderr


def test_two_plugins_adding_one_command_name_both_named():
    command = CliCommand("same", "x", lambda parser: None, lambda args: 0)
    plugins = [SimpleNamespace(otelgw_cli_commands=hookimpl(lambda: [command])) for _ in range(2)]
    with pytest.raises(PluginError, match="command 'same' is added twice: by plugin"):
        load_registry(plugins, entry_points=False)


def test_the_alerts_commands_come_from_the_alerts_plugin():
    registry = load_registry()
    assert {"alerts", "rules"} <= set(registry.commands)
    assert registry.commands["alerts"].run.__module__ == "plugins.processors.alerts.cli"
