"""``otelgw top --once`` and ``otelgw tap`` against a real gateway process fed by the OpenTelemetry SDK: the
numbers shown match the self-metrics, taps show data as it leaves a component (redacted or not, as their header
says), and the admin token is required."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port, http_get

TOKEN = "observe-token-1234"
SPANS = 120


def config(ports: dict[str, int]) -> str:
    return textwrap.dedent(f"""
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        processors:
          batch: {{timeout: 50ms}}
          redaction:
            allow_all_keys: true
            blocked_values: ['[a-z]+@example\\.com']
          tail_sampling:
            decision_wait: 200ms
            policies: [{{name: errors-only, type: status_code, status_code: {{status_codes: [ERROR]}}}}]
        exporters:
          debug: {{verbosity: basic}}
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: {TOKEN}}}
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces:
              receivers: [otlp]
              processors: [batch, redaction, tail_sampling]
              exporters: [debug]
    """)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    ports = {name: free_port() for name in ("grpc", "health", "admin", "metrics")}
    path = tmp_path / "gw.yaml"
    path.write_text(config(ports))
    gw = GatewayProcess(path, ports, tmp_path / "gw.log").start()
    try:
        gw.wait_ready()
        yield gw
    finally:
        gw.kill()


def send_spans(port: int, count: int, error_every: int = 0) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)))
    tracer = provider.get_tracer("observe-test")
    from opentelemetry.trace import Status, StatusCode
    for i in range(count):
        with tracer.start_as_current_span("checkout", attributes={"user.email": "jane@example.com", "n": i}) as span:
            if error_every and i % error_every == 0:
                span.set_status(Status(StatusCode.ERROR))
    provider.shutdown()


def otelgw(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})


def start_tap(gw: GatewayProcess, *args: str) -> tuple[subprocess.Popen[str], str]:
    """A running ``otelgw tap``; returns once its header says the tap is attached."""
    process = subprocess.Popen([sys.executable, "-m", "gateway", "tap", *args, "--admin",
                                f"http://127.0.0.1:{gw.ports['admin']}", "--token", TOKEN],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    header = process.stdout.readline()
    assert header.startswith("# tap:"), (header, process.stderr.read() if process.stderr else "")
    return process, header


def test_top_once_matches_self_metrics(gateway: GatewayProcess) -> None:
    send_spans(gateway.ports["grpc"], SPANS, error_every=10)
    deadline = time.monotonic() + 10
    while gateway.metric("otelcol_processor_outgoing_items_total", processor="tail_sampling") < SPANS / 10:
        assert time.monotonic() < deadline, gateway.log()
        time.sleep(0.1)
    time.sleep(1.2)  # one stats sample after the last change
    admin = ["--admin", f"http://127.0.0.1:{gateway.ports['admin']}", "--token", TOKEN]
    result = otelgw("top", "--once", "--output", "json", *admin)
    assert result.returncode == 0, result.stderr
    snapshot = json.loads(result.stdout)
    components = {(c["kind"], c["id"]): c for c in snapshot["stats"]["components"]}
    receiver = components[("receiver", "otlp")]
    assert receiver["in_total"] == gateway.metric("otelcol_receiver_accepted_spans_total") == SPANS
    for processor in ("batch", "redaction", "tail_sampling"):
        entry = components[("processor", processor)]
        assert entry["in_total"] == gateway.metric("otelcol_processor_incoming_items_total", processor=processor)
        assert entry["out_total"] == gateway.metric("otelcol_processor_outgoing_items_total", processor=processor)
    # tail_sampling kept the 12 error traces and dropped the others on purpose: counted with a reason
    sampling = components[("processor", "tail_sampling")]
    assert sampling["out_total"] == SPANS / 10
    assert sampling["dropped"] == {"not_sampled": SPANS - SPANS / 10}
    assert gateway.metric("otelgw_component_dropped_items_total", component="tail_sampling",
                          reason="not_sampled") == SPANS - SPANS / 10
    assert components[("exporter", "debug")]["out_total"] == gateway.metric("otelcol_exporter_sent_spans_total")
    assert snapshot["stats"]["gateway"]["healthy"] is True and snapshot["alerts"] is None
    keys = {n["key"] for n in snapshot["stats"]["graph"]["nodes"]}
    assert keys == {"receiver:otlp", "processor:batch@traces", "processor:redaction@traces",
                    "processor:tail_sampling@traces", "exporter:debug"}

    table = otelgw("top", "--once", *admin)
    assert table.returncode == 0, table.stderr
    line = next(row for row in table.stdout.splitlines() if " tail_sampling " in row)
    assert f" {SPANS} " in line and f"not_sampled={SPANS - SPANS // 10}" in line, line
    assert "healthy" in table.stdout

    # the token is required
    refused = otelgw("top", "--once", "--admin", f"http://127.0.0.1:{gateway.ports['admin']}", "--token", "nope")
    assert refused.returncode != 0 and "401" in refused.stderr


def test_tap_shows_data_as_it_leaves_the_component(gateway: GatewayProcess) -> None:
    before, before_header = start_tap(gateway, "batch", "--limit", "3")
    after, after_header = start_tap(gateway, "redaction", "--limit", "2", "--output", "json", "--signal", "traces",
                                    "--rate", "50/s")
    try:
        assert "NOT yet redacted" in before_header and "redaction" in before_header
        assert "redacted by redaction" in after_header and "at most 50 items/s" in after_header
        send_spans(gateway.ports["grpc"], 20)
        out_before, _ = before.communicate(timeout=20)
        out_after, _ = after.communicate(timeout=20)
    finally:
        before.kill()
        after.kill()
    lines = [line for line in out_before.splitlines() if line.startswith("span ")]
    assert len(lines) == 3 and all("user.email=jane@example.com" in line for line in lines), out_before
    assert out_before.splitlines()[-1].startswith("# tap ended: limit reached")
    batches = [json.loads(line) for line in out_after.splitlines() if not line.startswith("#")]
    spans = [s for b in batches for rs in b["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert len(spans) == 2
    emails = [a["value"]["stringValue"] for s in spans for a in s["attributes"] if a["key"] == "user.email"]
    assert len(emails) == 2 and not any("jane@example.com" in e for e in emails), emails


def test_tap_errors_and_token(gateway: GatewayProcess) -> None:
    url = f"http://127.0.0.1:{gateway.ports['admin']}"
    unknown = otelgw("tap", "nope", "--admin", url, "--token", TOKEN)
    assert unknown.returncode != 0 and "404" in unknown.stderr and "receiver:otlp" in unknown.stderr
    bad_rate = otelgw("tap", "batch", "--rate", "fast", "--admin", url, "--token", TOKEN)
    assert bad_rate.returncode == 2 and "items per second, e.g. 50 or 50/s" in bad_rate.stderr
    exporter = otelgw("tap", "debug", "--admin", url, "--token", TOKEN)  # exporters have no output to tap
    assert exporter.returncode != 0 and "no receiver, processor or connector debug" in exporter.stderr
    status, _ = http_get(f"{url}/api/tap?component=batch")
    assert status == 401
