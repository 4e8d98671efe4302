"""Hot reload: ``POST /-/reload`` and SIGHUP load the files again; unchanged components keep running with their
state, changed ones are replaced, and an invalid config is rejected with its errors while the pipelines go on."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import textwrap
import time
from pathlib import Path

import aiohttp

from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port, http_post

TOKEN = "reload-token"


def config_text(sink: OtlpSink, http_port: int, *, batch_timeout: str = "1ms", extra_exporter: bool = False,
                otlp_http_timeout: str = "5s") -> str:
    exporters = "[otlp_grpc, otlp_http]" if extra_exporter else "[otlp_grpc]"
    return textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{http_port}"}}}}}}
        processors:
          batch: {{timeout: {batch_timeout}}}
        exporters:
          otlp_grpc: {{endpoint: "{sink.grpc_endpoint}", tls: {{insecure: true}}}}
          otlp_http: {{endpoint: "{sink.http_endpoint}", timeout: {otlp_http_timeout}}}
        service:
          admin: {{endpoint: "127.0.0.1:0", token: {TOKEN}}}
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch], exporters: {exporters}}}
    """)


async def post_reload(service: Service, token: str = TOKEN) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://{service.admin.address}/-/reload",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def send(port: int, name: str) -> int:
    batch = make_traces(1)
    batch.resource_spans[0].scope_spans[0].spans[0].name = name
    status, _ = await asyncio.to_thread(http_post, f"http://127.0.0.1:{port}/v1/traces", batch.SerializeToString(),
                                        {"Content-Type": "application/x-protobuf"})
    return status


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_reload_keeps_unchanged_components_and_replaces_changed_ones(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(sink, port))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        receiver = service.graph.find(Kind.RECEIVER, "otlp")
        exporter = service.graph.find(Kind.EXPORTER, "otlp_grpc")
        batch = service.graph.find(Kind.PROCESSOR, "batch")
        assert await send(port, "before") == 200
        await wait_for(lambda: sink.item_count(Signal.TRACES) == 1)

        path.write_text(config_text(sink, port, extra_exporter=True))  # the pipeline gains an exporter
        status, body = await post_reload(service)
        assert status == 200, body
        assert service.graph.find(Kind.RECEIVER, "otlp") is receiver  # same port, never closed
        assert service.graph.find(Kind.EXPORTER, "otlp_grpc") is exporter  # same queue
        assert service.graph.find(Kind.PROCESSOR, "batch") is not batch  # what it feeds changed
        assert "exporter otlp_http (traces)" in body["started"]
        assert "exporter otlp_grpc (traces)" in body["kept"]
        assert await send(port, "after") == 200
        await wait_for(lambda: sink.item_count(Signal.TRACES) == 3)  # once per exporter
        assert sorted(r.transport for r in sink.received(Signal.TRACES))[-2:] == ["grpc", "http"]

        path.write_text(config_text(sink, port, extra_exporter=True, otlp_http_timeout="6s"))
        status, body = await post_reload(service)
        assert status == 200
        assert service.graph.find(Kind.EXPORTER, "otlp_grpc") is exporter
        assert set(body["stopped"]) == {"processor batch (traces) in pipeline traces", "exporter otlp_http (traces)"}
        assert service.host.healthy()  # what was stopped is forgotten, not reported as stopped
    finally:
        await service.shutdown()
        await sink.stop()


async def test_invalid_config_is_rejected_with_its_errors_and_pipelines_keep_running(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(sink, port))
    service = Service.from_files([str(path)])
    await service.start()
    try:
        graph = service.graph
        path.write_text(config_text(sink, port).replace("timeout: 1ms", "timeout: soon")
                        + "  bogus: 1\n")
        status, body = await post_reload(service)
        assert status == 400
        assert body == {"reloaded": False, "errors": [
            "processors::batch::timeout: expected a duration such as '5s', '200ms' or '1m30s', got 'soon'",
            "service::bogus: unknown key; valid keys are: extensions, pipelines, telemetry, admin"]}
        assert service.graph is graph
        assert (await post_reload(service, token="wrong"))[0] == 401
        assert await send(port, "still-running") == 200
        await wait_for(lambda: sink.item_count(Signal.TRACES) == 1)
    finally:
        await service.shutdown()
        await sink.stop()


async def test_a_new_component_that_cannot_start_restores_the_previous_config(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    port, taken = free_port(), free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text(sink, port))
    service = Service.from_files([str(path)])
    await service.start()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", taken)
    try:
        path.write_text(config_text(sink, taken, batch_timeout="2ms"))  # the new receiver's port is in use
        status, body = await post_reload(service)
        assert status == 400
        assert "the previous configuration was restored" in body["errors"][0]
        assert await send(port, "old-port") == 200
        await wait_for(lambda: sink.item_count(Signal.TRACES) == 1)
        assert service.host.healthy()
    finally:
        blocker.close()
        await service.shutdown()
        await sink.stop()


def test_sighup_reloads_a_running_gateway(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("http", "health", "metrics")}
    path = tmp_path / "gateway.yaml"

    def write(out: str) -> None:
        path.write_text(textwrap.dedent(f"""
            extensions:
              health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
            receivers:
              otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
            exporters:
              file: {{path: "{tmp_path / out}", flush_interval: 0s}}
            service:
              extensions: [health_check]
              telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
              pipelines:
                traces: {{receivers: [otlp], exporters: [file]}}
        """))

    write("first.jsonl")
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        gateway.wait_ready()
        assert asyncio.run(send(ports["http"], "one")) == 200
        write("second.jsonl")
        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "configuration reloaded" not in gateway.log():
            assert time.monotonic() < deadline, gateway.log()
            time.sleep(0.05)
        assert asyncio.run(send(ports["http"], "two")) == 200
        assert gateway.stop() == 0
        first = (tmp_path / "first.jsonl").read_text()
        second = (tmp_path / "second.jsonl").read_text()
        assert '"one"' in first and '"two"' not in first
        assert '"two"' in second
        assert all(json.loads(line) for line in second.splitlines())
    finally:
        gateway.kill()
