"""The README's plugin example, taken from the README text itself, as a new user follows it.

Its files are the code blocks of "Write a plugin" whose first line names a path under ``my-plugin/``. They are
written to a temporary directory, and the README's shell block runs line by line in a fresh virtual environment
(otelgw installed from this repository, offline): the package installs, ``otelgw components`` lists ``tag``, and
the plugin's own test passes. ``otelgw run`` is then started on the README's config (only the ports changed to
free ones, plus a health endpoint to wait on) and spans sent by the OpenTelemetry SDK reach a real OTLP backend
carrying the attribute the plugin sets.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from freshvenv import ROOT, FreshVenv
from gwproc import GatewayProcess, free_port

_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Write a plugin\n")
    return text[start:text.index("\n## ", start + 1)]


def example_files() -> dict[str, str]:
    """``my-plugin/...`` path → content, for every block whose first line is ``# my-plugin/...``."""
    files = {}
    for _, block in _BLOCK.findall(readme_section()):
        first, _, rest = block.partition("\n")
        if first.startswith("# my-plugin/"):
            files[first.removeprefix("# ")] = rest
    return files


def shell_lines() -> list[str]:
    (block,) = [body for language, body in _BLOCK.findall(readme_section()) if language == "sh"]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_names_every_file_it_needs() -> None:
    files = example_files()
    assert set(files) == {"my-plugin/pyproject.toml", "my-plugin/src/my_plugin/__init__.py",
                          "my-plugin/tests/test_tag.py", "my-plugin/otelgw.yaml"}
    assert shell_lines()[-1] == "otelgw run --config my-plugin/otelgw.yaml"


def gateway_config(readme_yaml: str, ports: dict[str, int], backend: str) -> dict[str, Any]:
    """The README's config with free ports: its receiver, its exporter's backend, and self-telemetry."""
    config = yaml.safe_load(readme_yaml)
    config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = f"127.0.0.1:{ports['grpc']}"
    config["exporters"]["otlp"]["endpoint"] = backend
    config["extensions"] = {"health_check": {"endpoint": f"127.0.0.1:{ports['health']}"}}
    config["service"]["extensions"] = ["health_check"]
    config["service"]["telemetry"] = {"metrics": {"address": f"127.0.0.1:{ports['metrics']}"}}
    return config


def send_spans(port: int, count: int) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    tracer = provider.get_tracer("readme-plugin-test")
    for i in range(count):
        with tracer.start_as_current_span(f"order-{i}"):
            pass
    provider.shutdown()


async def test_the_readme_plugin_installs_registers_passes_its_test_and_runs_in_a_pipeline(tmp_path: Path) -> None:
    for path, content in example_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    venv = await asyncio.to_thread(FreshVenv, tmp_path / "venv")
    *setup, run = shell_lines()
    for line in setup:
        result = await asyncio.to_thread(venv.shell, line, tmp_path)
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        if line.startswith("otelgw components"):
            assert re.search(r"^processor\s+tag\s+alpha\s+traces,metrics,logs\s+-\s+tag$", result.stdout, re.M)
        if "pytest" in line:
            assert "1 passed" in result.stdout

    sink = OtlpSink()
    await sink.start()
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = tmp_path / "my-plugin" / "free-ports.yaml"
    config.write_text(yaml.safe_dump(gateway_config((tmp_path / "my-plugin/otelgw.yaml").read_text(), ports,
                                                    sink.grpc_endpoint)))
    assert run.split()[:2] == ["otelgw", "run"]
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log", command=[str(venv.bin("otelgw"))])
    try:
        gateway.start()
        await asyncio.to_thread(gateway.wait_ready)
        await asyncio.to_thread(send_spans, ports["grpc"], 5)
        # The exporter's sending queue answers the SDK before the backend has the spans.
        while sink.item_count(Signal.TRACES) < 5:
            assert gateway.process is not None and gateway.process.poll() is None, gateway.log()
            await asyncio.sleep(0.05)
        assert sink.item_count(Signal.TRACES) == 5, gateway.log()
        for batch in sink.batches(Signal.TRACES):
            for resource_spans in batch.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                assert attributes["team"] == "checkout"
                assert attributes["service.name"] == "checkout"
        assert gateway.stop() == 0, gateway.log()
    finally:
        gateway.kill()
        await sink.stop()


def test_the_readme_plugin_type_checks_strictly(tmp_path: Path) -> None:
    """``mypy --strict`` on the example as written: a plugin author who copies it starts from exact types."""
    pytest.importorskip("mypy")
    source = tmp_path / "my_plugin.py"
    source.write_text(example_files()["my-plugin/src/my_plugin/__init__.py"])
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                             "--cache-dir", str(tmp_path / "cache"), str(source)],
                            cwd=ROOT, env={**os.environ, "MYPYPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
