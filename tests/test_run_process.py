"""``otelgw run`` as a user runs it: a real process on uvloop, fed by the real OpenTelemetry SDK, stopped by SIGTERM.

The batch processor holds spans for far longer than the test waits, and answers no sender before it has handed
their spans on: the senders are answered, and the file exporter gets the spans, only through the shutdown drain
(receivers first, then processors flush, then exporters).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> tuple[int, bytes]:
    """GET ``url`` until it answers 200 (the gateway is still starting before that) or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            if time.monotonic() > deadline:
                return exc.code, exc.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


@pytest.fixture
def gateway_process(tmp_path: Path):
    ports = {name: free_port() for name in ("grpc", "http", "health", "metrics")}
    out = tmp_path / "spans.jsonl"
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp:
            protocols:
              grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}
              http: {{endpoint: "127.0.0.1:{ports['http']}"}}
        processors:
          batch: {{timeout: 60s, send_batch_size: 100000}}
        exporters:
          file: {{path: "{out}", flush_interval: 0s}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [batch], exporters: [file]}}
    """))
    process = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                               stderr=subprocess.PIPE, text=True)
    yield process, ports, out
    if process.poll() is None:
        process.kill()
        process.wait()


def test_sdk_to_running_gateway_then_sigterm_drains_everything(gateway_process):
    process, ports, out = gateway_process
    status, body = wait_http(f"http://127.0.0.1:{ports['health']}/health/ready")
    assert status == 200, body
    assert json.loads(body)["status"] == "Server available"

    finished = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("test")
    sent = {}
    for i in range(25):
        with tracer.start_as_current_span(f"call-{i}", attributes={"call.id": i}) as span:
            sent[span.get_span_context().span_id] = f"call-{i}"
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{ports['http']}/v1/traces", timeout=60)
    with ThreadPoolExecutor(max_workers=25) as pool:  # 25 senders, one span each, each waiting for its answer
        answers = [pool.submit(exporter.export, [span]) for span in finished.get_finished_spans()]
        incoming = 'otelcol_processor_incoming_items_total{otel_signal="traces",processor="batch"} 25.0'
        deadline = time.monotonic() + 30
        while incoming not in wait_http(f"http://127.0.0.1:{ports['metrics']}/metrics")[1].decode():
            assert time.monotonic() < deadline, "the batch processor never held the 25 spans"
            time.sleep(0.05)
        time.sleep(0.2)
        assert not any(answer.done() for answer in answers)  # held, so nobody has been told OK yet
        assert not out.exists() or out.read_text() == ""

        process.send_signal(signal.SIGTERM)
        assert [answer.result(timeout=30) for answer in answers] == [SpanExportResult.SUCCESS] * 25
    assert process.wait(timeout=30) == 0
    received = {}
    for line in out.read_text().splitlines():
        for rs in json.loads(line)["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for span in ss["spans"]:
                    received[int(span["spanId"], 16)] = span["name"]
    assert received == sent
    logs = [json.loads(line) for line in process.stderr.read().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "gateway stopped" for entry in logs)


def test_invalid_config_exits_non_zero_with_every_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("receivers: {otlp: {protocols: {grpc: {endpoint: nowhere}}}}\nservice: {pipelines: {}}\n")
    result = subprocess.run([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, env={**os.environ})
    assert result.returncode == 2
    assert "service::pipelines: at least one pipeline is required" in result.stderr
