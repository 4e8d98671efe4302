"""Admission control under overload, in a real gateway process: several senders of large requests at once, about
three times what fits under the limit. Receivers reserve each request's size before decoding it, so the peak
resident memory stays under ``limit_mib`` although memory is measured only once a second; what does not fit is
refused with 429 + Retry-After, and every request that was answered 200 arrives at the backend, once."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from pathlib import Path

from gateway.component import Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parents[3]))
from gwproc import GatewayProcess, free_port, http_post

LIMIT_MIB = 300
SENDERS = 16
REQUESTS_EACH = 3
SPANS_PER_REQUEST = 40_000  # about 6 MB on the wire


async def test_concurrent_large_requests_never_take_memory_over_the_limit(tmp_path: Path) -> None:
    sink = OtlpSink(grpc_options=[("grpc.max_receive_message_length", 64 << 20)])
    await sink.start()
    ports = {name: free_port() for name in ("http", "health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        processors:
          memory_limiter: {{check_interval: 1s, limit_mib: {LIMIT_MIB}}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [memory_limiter], exporters: [otlp]}}
    """))
    payload = make_traces(SPANS_PER_REQUEST, attributes={"http.route": "/checkout/payment"}).SerializeToString()
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log").start()
    answers: dict[int, int] = {}
    lock = threading.Lock()

    def send() -> None:
        accepted = 0
        while accepted < REQUESTS_EACH:
            status, _ = http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", payload,
                                  {"Content-Type": "application/x-protobuf"}, timeout=120)
            with lock:
                answers[status] = answers.get(status, 0) + 1
            if status == 200:
                accepted += 1
            else:
                assert status == 429, status  # retryable, never a loss
                time.sleep(0.05)  # sooner than Retry-After asks: more pressure

    def overload() -> None:  # in a thread: the sink serves on this test's event loop meanwhile
        senders = [threading.Thread(target=send) for _ in range(SENDERS)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(240)

    try:
        await asyncio.to_thread(gateway.wait_ready)
        baseline_mib = gateway.status_kb("VmRSS") / 1024
        await asyncio.to_thread(overload)
        total = SENDERS * REQUESTS_EACH * SPANS_PER_REQUEST
        deadline = time.monotonic() + 60
        while sink.item_count(Signal.TRACES) < total:
            assert time.monotonic() < deadline, (sink.item_count(Signal.TRACES), total, gateway.log())
            await asyncio.sleep(0.1)
        peak_mib = gateway.status_kb("VmHWM") / 1024
        refused = gateway.metric("otelgw_memory_limiter_refused_requests_total")
        print(f"baseline {baseline_mib:.0f} MiB, peak {peak_mib:.0f} MiB, limit {LIMIT_MIB} MiB, answers {answers}")
        assert answers.get(200) == SENDERS * REQUESTS_EACH
        # The overload was real and refused at admission (a few more may be refused later in the pipeline,
        # by the limiter's own measurement).
        assert 0 < refused <= answers.get(429, 0)
        assert sink.item_count(Signal.TRACES) == total  # everything acknowledged arrived, once
        assert peak_mib < LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB over the {LIMIT_MIB} MiB limit"
        assert gateway.stop() == 0
    finally:
        gateway.kill()
        await sink.stop()
