"""The memory_limiter against a real SDK client: a gateway in a subprocess with small limits, its backend down,
is pushed past its soft limit; it refuses (RESOURCE_EXHAUSTED + RetryInfo), its peak resident memory stays under
the hard limit, and once the backend is back every span the client sent arrives."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parents[3]))
from gwproc import GatewayProcess, free_port

SPANS = 12_000
PAYLOAD = "x" * 4096  # ~50 MB in total: far more than the limiter lets the gateway hold
LIMIT_MIB, SPIKE_MIB = 160, 40  # the gateway alone starts at about 80 MiB


def send_spans(endpoint: str, done: threading.Event) -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=60),
        max_queue_size=SPANS, max_export_batch_size=200, schedule_delay_millis=20))
    tracer = provider.get_tracer("pressure")
    for i in range(SPANS):
        with tracer.start_as_current_span(f"span-{i}") as span:
            span.set_attribute("payload", PAYLOAD)
    provider.force_flush(120_000)
    provider.shutdown()
    done.set()


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sdk_client_is_refused_under_pressure_and_its_data_arrives_after(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(100_000, message="backend down")
    ports = {name: free_port() for name in ("grpc", "health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        processors:
          memory_limiter: {{check_interval: 20ms, limit_mib: {LIMIT_MIB}, spike_limit_mib: {SPIKE_MIB},
                            retry_after: 500ms}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{queue_size: 100000, num_consumers: 4}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp]}}
    """))
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        baseline_mib = gateway.status_kb("VmRSS") // 1024
        assert baseline_mib < LIMIT_MIB - SPIKE_MIB - 20, f"baseline RSS {baseline_mib} MiB leaves no room"
        done = threading.Event()
        client = threading.Thread(target=send_spans, args=(f"127.0.0.1:{ports['grpc']}", done), daemon=True)
        client.start()
        def refusals() -> float:  # in the pipeline (spans) or, before decoding, at admission (requests)
            return (gateway.metric("otelcol_processor_refused_spans_total")
                    + gateway.metric("otelgw_memory_limiter_refused_requests_total"))

        await wait_for(lambda: refusals() > 0, 60, "the limiter to refuse")
        refused = refusals()
        sink.clear()  # the backend comes back: the queue drains, memory falls, the client's retries get in
        await wait_for(done.is_set, 90, "the client to finish")
        await wait_for(lambda: sink.item_count(Signal.TRACES) >= SPANS, 30, "every span at the backend")
        peak_mib = gateway.status_kb("VmHWM") / 1024
        names = [span.name for span in sink.spans()]
        assert len(set(names)) == SPANS  # every span arrived ...
        assert len(names) == SPANS  # ... once: refused requests are not half-accepted
        assert refused > 0
        assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB over the {LIMIT_MIB} MiB limit"
        print(f"baseline {baseline_mib} MiB, peak {peak_mib:.0f} MiB, limit {LIMIT_MIB} MiB, refused {refused:g}")
    finally:
        gateway.kill()
        await sink.stop()
