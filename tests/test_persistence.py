"""Nothing lost: the backend is down, the gateway takes a known workload into its persistent queues, is killed
with SIGKILL, restarts, the backend comes back, and every span, data point and log record arrives.

Delivery is at least once; the test counts duplicates (a request the backend took whose acknowledgement had
not reached the disk would arrive twice) and allows them, but requires every item.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import textwrap
import time
from pathlib import Path

from gateway.component import Signal, count_items
from gateway.testing import make_logs, make_metrics, make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port, http_post

REQUESTS = 40  # per signal
BUILDERS = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
PATHS = {Signal.TRACES: "/v1/traces", Signal.METRICS: "/v1/metrics", Signal.LOGS: "/v1/logs"}


def request_id(signal: Signal, batch) -> str:  # type: ignore[no-untyped-def]
    resource = getattr(batch, f"resource_{'spans' if signal is Signal.TRACES else signal.value}")[0].resource
    return next(a.value.string_value for a in resource.attributes if a.key == "service.name")


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigkill_with_backend_down_loses_nothing(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(100_000, message="backend down")
    ports = {name: free_port() for name in ("http", "health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/queue: {{directory: "{tmp_path / 'queue'}", create_directory: true}}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{storage: file_storage/queue, queue_size: 50000000, sizer: bytes, num_consumers: 4}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check, file_storage/queue]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp]}}
            metrics: {{receivers: [otlp], exporters: [otlp]}}
            logs: {{receivers: [otlp], exporters: [otlp]}}
    """))
    log = tmp_path / "gateway.log"
    expected = {signal: 0 for signal in Signal}
    gateway = GatewayProcess(config, ports, log).start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        for i in range(REQUESTS):
            for signal, build in BUILDERS.items():
                batch = build(5 + i % 7, service=f"{signal.value}-{i}")
                expected[signal] += count_items(signal, batch)
                status, body = await asyncio.to_thread(
                    http_post, f"http://127.0.0.1:{ports['http']}{PATHS[signal]}", batch.SerializeToString(),
                    {"Content-Type": "application/x-protobuf"})
                assert status == 200, body
        assert gateway.metric("otelcol_receiver_accepted_spans_total") == expected[Signal.TRACES]
        gateway.kill()  # SIGKILL: no drain, no flush, no goodbye
        assert sink.item_count(Signal.TRACES) == 0
        gateway = GatewayProcess(config, ports, log).start()
        await asyncio.to_thread(gateway.wait_ready)
        sink.clear()  # the backend is back
        await wait_for(lambda: all(sink.item_count(s) >= expected[s] for s in Signal), 60,
                       "every item at the backend")
        copies = collections.Counter(
            (signal, request_id(signal, batch)) for signal in Signal for batch in sink.batches(signal))
        assert set(copies) == {(s, f"{s.value}-{i}") for s in Signal for i in range(REQUESTS)}
        duplicates = sum(n - 1 for n in copies.values())
        print(f"delivered {sum(expected.values())} items in {3 * REQUESTS} requests after SIGKILL; "
              f"duplicate requests: {duplicates}")
        assert duplicates == 0  # the backend took nothing before the kill, so nothing can repeat
        assert gateway.stop() == 0  # SIGTERM drains within the grace period
    finally:
        gateway.kill()
        await sink.stop()


async def test_sigterm_keeps_retrying_an_in_memory_queue_until_the_grace_period_ends(tmp_path: Path) -> None:
    """In-memory sending queue, backend down when SIGTERM comes and back 8 s later: the exporter keeps retrying
    within --grace-period (not only its own 5 s of drain), so every acknowledged span arrives and the exit is
    clean. A persistent queue would keep the rest on disk instead and stop at once."""
    sink = OtlpSink()
    await sink.start()
    sink.fail_next(100_000, message="backend down")
    ports = {name: free_port() for name in ("http", "health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            retry_on_failure: {{initial_interval: 1s, max_interval: 2s, max_elapsed_time: 0}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp]}}
    """))
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start("--grace-period", "30")
    try:
        await asyncio.to_thread(gateway.wait_ready)
        sent = 0
        for i in range(10):
            batch = make_traces(5, service=f"req-{i}")
            sent += 5
            status, body = await asyncio.to_thread(
                http_post, f"http://127.0.0.1:{ports['http']}/v1/traces", batch.SerializeToString(),
                {"Content-Type": "application/x-protobuf"})
            assert status == 200, body
        await wait_for(lambda: len(sink.received(Signal.TRACES)) >= 1, 30, "a first failed attempt")
        stopped = time.monotonic()
        gateway.send_signal(signal.SIGTERM)
        await asyncio.sleep(8)  # longer than the exporter's own drain of 5 s
        assert gateway.process is not None and gateway.process.poll() is None  # still retrying
        sink.clear()  # the backend is back
        code = await asyncio.to_thread(gateway.process.wait, 60)
        assert sink.item_count(Signal.TRACES) == sent, gateway.log()
        assert code == 0, gateway.log()
        assert time.monotonic() - stopped < 29  # it left once the queue was empty, not at the deadline
        assert "items were lost" not in gateway.log()
    finally:
        gateway.kill()
        await sink.stop()
