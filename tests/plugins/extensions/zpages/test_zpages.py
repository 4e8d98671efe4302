"""The zpages extension: the Collector's paths, each component of the running config, counters, extensions."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import aiohttp

from gateway._host.service import Service
from gateway.component import ComponentID
from gateway.testing import make_traces

sys.path.insert(0, str(Path(__file__).parents[3]))
from gwproc import free_port

CONFIG = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:PORT"}}}
    processors:
      batch: {timeout: 1ms}
    exporters:
      debug: {}
    extensions:
      zpages: {endpoint: "127.0.0.1:0"}
      health_check: {endpoint: "127.0.0.1:0"}
    service:
      extensions: [health_check, zpages]
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces: {receivers: [otlp], processors: [batch], exporters: [debug]}
        logs: {receivers: [otlp], exporters: [debug]}
""")


async def test_zpages_pages(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    port = free_port()
    path.write_text(CONFIG.replace("PORT", str(port)))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        address = service.host.extensions[ComponentID("zpages")].server.address
        pages = {}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{port}/v1/traces", data=make_traces(7).SerializeToString(),
                                    headers={"Content-Type": "application/x-protobuf"}) as answer:
                assert answer.status == 200
            await asyncio.sleep(1.3)  # one stats sample
            for name in ("servicez", "pipelinez", "extensionz", "featurez"):
                async with session.get(f"http://{address}/debug/{name}") as answer:
                    assert answer.status == 200 and answer.content_type == "text/html"
                    pages[name] = await answer.text()
            async with session.get(f"http://{address}/debug/servicez", headers={"Host": "evil.example"}) as answer:
                assert answer.status == 403
    finally:
        await service.shutdown()
    assert "config generation" in pages["servicez"] and "<td>True</td>" in pages["servicez"]
    pipelinez = pages["pipelinez"]
    assert "<h2>traces</h2>" in pipelinez and "<h2>logs</h2>" in pipelinez
    traces = pipelinez.split("<h2>traces</h2>", 1)[1]
    for row in ("<td>receiver</td><td>otlp</td><td>7</td><td>7</td>", "<td>processor</td><td>batch</td><td>7</td>",
                "<td>exporter</td><td>debug</td><td>7</td><td>7</td>"):
        assert row in traces, traces
    assert "<td>health_check</td><td>ok</td>" in pages["extensionz"]
    assert "<td>zpages</td><td>ok</td>" in pages["extensionz"]
    assert "no feature gates" in pages["featurez"]


def test_default_endpoint_is_the_collectors_on_localhost() -> None:
    from plugins.extensions.pprof.config import Config as PprofConfig
    from plugins.extensions.zpages.config import Config

    assert Config().endpoint == "localhost:55679"
    assert PprofConfig().endpoint == "localhost:1777"


def test_readme_examples_validate(tmp_path: Path) -> None:
    import re

    from gateway._host.registry import load_registry
    from gateway._host.service import load_config

    root = Path(__file__).parents[4] / "plugins" / "extensions"
    for name in ("zpages", "pprof"):
        blocks = re.findall(r"```yaml\n(.*?)```", (root / name / "README.md").read_text(), re.S)
        assert len(blocks) == 1
        path = tmp_path / f"{name}.yaml"
        path.write_text(blocks[0])
        config = load_config([str(path)], load_registry())
        assert [str(e) for e in config.extensions] == [name]
