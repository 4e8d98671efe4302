"""Benchmark: the ``prometheus`` receiver, scraping a large exposition into OTLP, next to the ceiling.

Figures, on this machine and measured in this run, all in samples per CPU-second:
- ceiling: prometheus_client's parser over the same text, nothing else (the text format, then OpenMetrics);
- in process: the receiver's translation of the same text (parse, relabel-free label merge, start times and
  staleness state, OTLP messages built and serialized);
- end to end: a gateway process scraping the exposition from an HTTP target every 2 s and exporting OTLP/gRPC
  to a sink, samples scraped per CPU-second of the gateway process.

The exposition: ``--series`` series of a prometheus_client-like service (counters with labels, gauges, and
histograms with 10 buckets, about a third of the samples each).

    python -m bench.scrape [--series 20000] [--seconds 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from bench.passthrough import cpu_seconds, free_port
from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink
from plugins.receivers.prometheus.translate import Limits, SeriesState, translate

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def exposition(series: int, openmetrics: bool) -> str:
    """About ``series`` samples: a third counters, a third gauges, a third histogram samples."""
    per_kind = series // 3
    lines: list[str] = []
    counter = "http_requests" if openmetrics else "http_requests_total"
    lines += [f"# HELP {counter} Requests served.", f"# TYPE {counter} counter"]
    lines += [f'http_requests_total{{route="/api/v1/item/{i % 500}",method="GET",code="{200 + i % 5}",'
              f'pod="web-{i // 500}"}} {i * 7}' for i in range(per_kind)]
    lines += ["# HELP queue_depth Jobs waiting.", "# TYPE queue_depth gauge"]
    lines += [f'queue_depth{{queue="q{i}",shard="{i % 16}"}} {i % 97}.5' for i in range(per_kind)]
    lines += ["# HELP request_seconds Latency.", "# TYPE request_seconds histogram"]
    for h in range(per_kind // (len(BUCKETS) + 3)):
        labels = f'route="/api/v1/item/{h}",pod="web-{h % 40}"'
        running = 0
        for i, bound in enumerate(BUCKETS):
            running += i + h % 3
            lines.append(f'request_seconds_bucket{{{labels},le="{bound}"}} {running}')
        lines.append(f'request_seconds_bucket{{{labels},le="+Inf"}} {running + 1}')
        lines.append(f"request_seconds_count{{{labels}}} {running + 1}")
        lines.append(f"request_seconds_sum{{{labels}}} {running * 0.1:.3f}")
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def samples_of(text: str, openmetrics: bool) -> int:
    parse = parse_openmetrics if openmetrics else parse_text
    return sum(len(f.samples) for f in parse(text))


def per_cpu_second(work: Callable[[], Any], samples: int, seconds: float = 2.0) -> float:
    """Samples per CPU-second of this process over repeated runs of ``work`` (at least ``seconds`` of CPU)."""
    work()  # warm up
    start = time.process_time()
    runs = 0
    while time.process_time() - start < seconds:
        work()
        runs += 1
    return samples * runs / (time.process_time() - start)


def in_process(text: str, openmetrics: bool, samples: int) -> tuple[float, float]:
    content_type = "application/openmetrics-text; version=1.0.0" if openmetrics else "text/plain; version=0.0.4"
    parse = parse_openmetrics if openmetrics else parse_text
    ceiling = per_cpu_second(lambda: [f.samples for f in parse(text)], samples)
    state = SeriesState()
    clock = [1_800_000_000_000_000_000]

    def scrape() -> bytes:
        clock[0] += 1_000_000_000
        result = translate(text, content_type, target_labels={"job": "bench", "instance": "127.0.0.1:1"},
                           scheme="http", honor_labels=False, honor_timestamps=True, metric_relabel=[],
                           limits=Limits(), state=state, scrape_ns=clock[0])
        return result.request.SerializeToString()

    return ceiling, per_cpu_second(scrape, samples)


async def end_to_end(text: str, samples: int, seconds: int) -> tuple[float, float, int]:
    """(samples per gateway CPU-second, seconds per scrape, scrapes seen) with a gateway scraping every 2 s."""
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    target = f"127.0.0.1:{sock.getsockname()[1]}"
    sink = OtlpSink(grpc_options=[("grpc.max_receive_message_length", 256 << 20)])
    await sink.start()
    health = free_port()
    config = {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health}"}},
        "receivers": {"prometheus": {"config": {"scrape_configs": [{
            "job_name": "bench", "scrape_interval": "2s", "scrape_timeout": "2s",
            "static_configs": [{"targets": [target]}]}]}}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True},
                               "sending_queue": {"enabled": False}}},
        "service": {"extensions": ["health_check"], "telemetry": {"metrics": {"address": ""}},
                    "pipelines": {"metrics": {"receivers": ["prometheus"], "exporters": ["otlp"]}}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not sink.batches(Signal.METRICS):  # the first scrape has arrived
                assert gateway.poll() is None, "gateway exited"
                await asyncio.sleep(0.05)
            seen = len(sink.batches(Signal.METRICS))
            cpu0 = cpu_seconds(gateway.pid)
            await asyncio.sleep(seconds)
            cpu = cpu_seconds(gateway.pid) - cpu0
            done = len(sink.batches(Signal.METRICS)) - seen
        finally:
            gateway.terminate()
            gateway.wait(30)
            await sink.stop()
            await runner.cleanup()
    return samples * done / cpu, cpu / max(done, 1), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=16, help="seconds of end-to-end scraping (one every 2 s)")
    args = parser.parse_args()
    print(f"prometheus receiver: {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores")
    for openmetrics in (False, True):
        text = exposition(args.series, openmetrics)
        samples = samples_of(text, openmetrics)
        ceiling, receiver = in_process(text, openmetrics, samples)
        name = "OpenMetrics" if openmetrics else "text 0.0.4"
        print(f"  {name:12} {samples:,} samples, {len(text) / 1e6:.1f} MB: parser alone (ceiling) "
              f"{ceiling:,.0f} samples/CPU-s; receiver in process {receiver:,.0f} samples/CPU-s "
              f"({receiver / ceiling:.0%} of the ceiling)")
    text = exposition(args.series, False)
    samples = samples_of(text, False)
    rate, cpu_per_scrape, done = asyncio.run(end_to_end(text, samples, args.seconds))
    print(f"  end to end   gateway process scraping {samples:,} samples every 2 s: {rate:,.0f} samples per "
          f"gateway CPU-s ({cpu_per_scrape * 1000:.0f} ms of CPU per scrape, {done} scrapes)")


if __name__ == "__main__":
    main()
