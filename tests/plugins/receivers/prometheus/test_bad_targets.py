"""Targets that answer garbage, too slowly, or with 50 MB of series, scraped by a gateway process next to a good
target: each bad one is ``up`` 0, counted by cause and logged once per cause; the good one is scraped on time;
the gateway's peak memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from gateway.component import Signal
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from gwproc import GatewayProcess, free_port

_CHUNK_SERIES = 10_000


def _chunk() -> bytes:
    """~1 MB of gauge series, made once so serving 50 MB costs the test's event loop nothing."""
    lines = [f'huge_series_{i % 100}{{shard="{i}",pad="{"x" * 60}"}} {i}\n' for i in range(_CHUNK_SERIES)]
    return "".join(lines).encode()


_CHUNK = _chunk()


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain; version=0.0.4"})
    await response.prepare(request)
    try:
        for _ in range(50):  # 50 chunks of ~1 MB
            await response.write(_CHUNK)
    except (ConnectionError, RuntimeError):
        pass  # the scraper hung up at its limit
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text="slow_metric 1\n")


async def _garbage(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 40, content_type="text/plain")


async def serve() -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_get("/huge", _huge)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/garbage", _garbage)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, sock.getsockname()[1]


def job(name: str, port: int, path: str, **extra: Any) -> dict[str, Any]:
    return {"job_name": name, "scrape_interval": "500ms", "scrape_timeout": "400ms", "metrics_path": path,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}], **extra}


def up_by_job(sink: OtlpSink) -> dict[str, list[float]]:
    ups: dict[str, list[float]] = {}
    for request in sink.batches(Signal.METRICS):
        for rm in request.resource_metrics:
            job_name = next(kv.value.string_value for kv in rm.resource.attributes if kv.key == "service.name")
            for metric in (m for sm in rm.scope_metrics for m in sm.metrics if m.name == "up"):
                ups.setdefault(job_name, []).append(metric.gauge.data_points[0].as_double)
    return ups


async def test_bad_targets_are_counted_logged_once_and_cost_nothing_else(tmp_path: Path, app: Any) -> None:
    good_address, _ = app  # the good target is the prometheus_client app, in its own process
    runner, port = await serve()
    sink = OtlpSink()
    await sink.start()
    ports = {"metrics": free_port(), "health": free_port()}
    config = {
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{ports['health']}"}},
        "receivers": {"prometheus": {"config": {"scrape_configs": [
            # a generous timeout: the good target must never fail, even on a loaded machine
            {**job("good", 0, "/metrics"), "scrape_interval": "1s", "scrape_timeout": "1s",
             "static_configs": [{"targets": [good_address]}]},
            job("garbage", port, "/garbage"),
            job("slow", port, "/slow"),
            job("huge_samples", port, "/huge", sample_limit=50_000, scrape_timeout="2s", scrape_interval="2s"),
            job("huge_body", port, "/huge", body_size_limit="5MB"),
        ]}}},
        "exporters": {"otlp": {"endpoint": sink.grpc_endpoint, "tls": {"insecure": True}}},
        "service": {"extensions": ["health_check"],
                    "telemetry": {"metrics": {"address": f"127.0.0.1:{ports['metrics']}"}},
                    "pipelines": {"metrics": {"receivers": ["prometheus"], "exporters": ["otlp"]}}},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    try:
        await asyncio.to_thread(gateway.wait_ready)
        deadline = time.monotonic() + 30
        while True:  # about 6 s of scraping, longer on a loaded machine
            await asyncio.sleep(0.5)
            ups = up_by_job(sink)
            counts = {name: len(ups.get(name, [])) for name in ("good", "garbage", "slow", "huge_samples",
                                                                  "huge_body")}
            if (counts["good"] >= 12 and min(counts.values()) >= 2) or time.monotonic() > deadline:
                break
        assert set(ups) == {"good", "garbage", "slow", "huge_samples", "huge_body"}, gateway.log()
        good = [line for line in gateway.log().splitlines() if '"job": "good"' in line]
        assert len(ups["good"]) >= 6 and set(ups["good"]) == {1.0}, good  # every second, never held up
        for bad in ("garbage", "slow", "huge_samples", "huge_body"):
            assert len(ups[bad]) >= 2 and set(ups[bad]) == {0.0}, (bad, ups[bad])
        failures = {cause: gateway.metric("otelgw_receiver_scrape_failures_total", cause=cause)
                    for cause in ("parse_error", "timeout", "sample_limit", "body_size_limit")}
        assert all(count >= 2 for count in failures.values()), failures
        logged = [json.loads(line) for line in gateway.log().splitlines() if '"scrape failed' in line]
        assert sorted((entry["job"], entry["cause"]) for entry in logged) == [
            ("garbage", "parse_error"), ("huge_body", "body_size_limit"), ("huge_samples", "sample_limit"),
            ("slow", "timeout")]
        peak_mib = gateway.status_kb("VmHWM") / 1024
        print(f"gateway peak RSS {peak_mib:.0f} MiB")
        assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"
    finally:
        gateway.stop()
        await sink.stop()
        await runner.cleanup()
