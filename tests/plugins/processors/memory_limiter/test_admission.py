"""Admission control under overload, in a real gateway process. First, several senders of large requests at once,
about three times what fits under the limit. Then a steady load of 3.5 times what a slow backend takes, once with
memory_limiter and once without admission control. Receivers reserve each request's size before decoding it, so
the peak resident memory stays under ``limit_mib`` although memory is measured only once a second; what does not
fit is refused with 429 + Retry-After, and every request that was answered 200 arrives at the backend, once.
Without admission control the same load takes the process over the limit."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

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


# --- 3x what the pipeline can export --------------------------------------------------------------------------------
# A slow backend (every export waits SINK_DELAY_S) behind one exporter consumer sets the pipeline's capacity:
# CAPACITY_SPANS_S. The senders offer OVERLOAD times that for LOAD_S seconds, paced, without retrying what is
# refused. What the gateway cannot export piles up in the exporter's queue: without admission control it takes
# the process over the limit (the second run shows by how much), with memory_limiter it does not.
OVERLOAD_LIMIT_MIB = 220
SINK_DELAY_S = 0.5
SPANS_EACH = 2_000  # with a 1 KiB attribute: about 2.3 MB on the wire
CAPACITY_SPANS_S = SPANS_EACH / SINK_DELAY_S
OVERLOAD = 3.5
LOAD_S = 15.0


def _overload_config(ports: dict[str, int], sink: OtlpSink, limiter: bool) -> str:
    processors = f"processors: {{memory_limiter: {{check_interval: 1s, limit_mib: {OVERLOAD_LIMIT_MIB}}}}}" \
        if limiter else ""
    return textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{ports['http']}"}}}}}}
        {processors}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            timeout: 30s
            sending_queue: {{num_consumers: 1, queue_size: 1000}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], {"processors: [memory_limiter], " if limiter else ""}exporters: [otlp]}}
    """)


async def _offer_overload(tmp_path: Path, sink: OtlpSink, limiter: bool) -> dict[str, Any]:
    """Run a gateway, offer the load, let the backend drain it; what was answered, delivered and the peak RSS."""
    ports = {name: free_port() for name in ("http", "health", "metrics")}
    config = tmp_path / f"overload-{'limited' if limiter else 'unlimited'}.yaml"
    config.write_text(_overload_config(ports, sink, limiter))
    payload = make_traces(SPANS_EACH, attributes={"payload": "x" * 1024}).SerializeToString()
    requests = int(LOAD_S * OVERLOAD * CAPACITY_SPANS_S / SPANS_EACH)
    gateway = GatewayProcess(config, ports, tmp_path / f"{config.stem}.log").start()
    answers: dict[int, int] = {}
    lock = threading.Lock()
    sink.clear()
    sink.delay = SINK_DELAY_S

    def offer() -> float:
        """Request i leaves at i / rate seconds, from eight senders; returns the seconds the offer took."""
        started = time.monotonic()
        interval = LOAD_S / requests
        turns = iter(range(requests))

        def sender() -> None:
            for i in turns:  # shared: each request is sent once, by whichever sender is free
                wait = started + i * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                status, _ = http_post(f"http://127.0.0.1:{ports['http']}/v1/traces", payload,
                                      {"Content-Type": "application/x-protobuf"}, timeout=120)
                with lock:
                    answers[status] = answers.get(status, 0) + 1

        senders = [threading.Thread(target=sender) for _ in range(8)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(300)
        return time.monotonic() - started

    try:
        await asyncio.to_thread(gateway.wait_ready)
        offered_s = await asyncio.to_thread(offer)
        peak_mib = gateway.status_kb("VmHWM") / 1024
        sink.delay = 0.0  # the load is over: let the backend take the rest at once
        acknowledged = answers.get(200, 0) * SPANS_EACH
        deadline = time.monotonic() + 120
        while sink.item_count(Signal.TRACES) < acknowledged:
            assert time.monotonic() < deadline, (sink.item_count(Signal.TRACES), acknowledged, gateway.log())
            await asyncio.sleep(0.2)
        refused = gateway.metric("otelgw_memory_limiter_refused_requests_total") if limiter else 0.0
        assert gateway.stop() == 0
        return {"answers": answers, "peak_mib": peak_mib, "acknowledged": acknowledged, "refused": refused,
                "delivered": sink.item_count(Signal.TRACES), "offered": requests * SPANS_EACH,
                "overload": requests * SPANS_EACH / offered_s / CAPACITY_SPANS_S}
    finally:
        gateway.kill()


async def test_three_times_what_the_backend_takes_stays_under_the_limit_and_loses_nothing(tmp_path: Path) -> None:
    sink = OtlpSink(grpc_options=[("grpc.max_receive_message_length", 64 << 20)])
    await sink.start()
    try:
        limited = await _offer_overload(tmp_path, sink, limiter=True)
        unlimited = await _offer_overload(tmp_path, sink, limiter=False)
    finally:
        await sink.stop()
    for name, run in (("with memory_limiter", limited), ("without admission control", unlimited)):
        print(f"\n{name}: offered {run['offered']:,} spans at {run['overload']:.1f}x the backend's "
              f"{CAPACITY_SPANS_S:,.0f} spans/s; answers {run['answers']}; peak RSS {run['peak_mib']:.0f} MiB "
              f"(limit {OVERLOAD_LIMIT_MIB} MiB); {run['delivered']:,} of {run['acknowledged']:,} acknowledged "
              f"spans delivered")
    # With the limiter: every request answered OK or refused retryably (429), the refusals counted by the
    # limiter, everything acknowledged delivered exactly once, and the process under its limit throughout.
    assert set(limited["answers"]) <= {200, 429}, limited["answers"]
    assert 0 < limited["refused"] <= limited["answers"].get(429, 0), limited
    assert limited["delivered"] == limited["acknowledged"]
    assert limited["peak_mib"] < OVERLOAD_LIMIT_MIB, limited
    # The same load without admission control is all taken, and it is what takes the process over the limit.
    assert unlimited["answers"] == {200: unlimited["offered"] // SPANS_EACH}, unlimited["answers"]
    assert unlimited["delivered"] == unlimited["acknowledged"]
    assert unlimited["peak_mib"] > OVERLOAD_LIMIT_MIB, unlimited
