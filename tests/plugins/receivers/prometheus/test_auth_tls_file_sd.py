"""Scraping over mutual TLS with basic auth or a bearer token (secrets read from files), and file_sd targets that
come and go: a removed target's series are marked stale."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb
from pki import make_pki  # tests/pki.py, on sys.path through tests/conftest.py

from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, settings_for
from plugins.receivers.prometheus.factory import factory

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


async def serve(ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int, list[str | None]]:
    """/basic wants user:pw, /bearer wants token t0k; both answer a counter. Records each Authorization."""
    seen: list[str | None] = []

    async def metrics(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        seen.append(header)
        wanted = "Basic dXNlcjpwdw==" if request.path == "/basic" else "Bearer t0k"
        if header != wanted:
            return web.Response(status=401)
        return web.Response(text="# TYPE jobs_total counter\njobs_total 3\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/basic", metrics)
    app.router.add_get("/bearer", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    return runner, sock.getsockname()[1], seen


def ups(sink: Sink) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for batch in sink.batches[Signal.METRICS]:
        for rm in batch.resource_metrics:
            job = next(kv.value.string_value for kv in rm.resource.attributes if kv.key == "service.name")
            for m in (m for sm in rm.scope_metrics for m in sm.metrics if m.name == "up"):
                found.setdefault(job, []).append(m.gauge.data_points[0].as_double)
    return found


async def run_receiver(jobs: list[dict[str, Any]], until: Any, timeout: float = 20) -> Sink:
    config = decode(factory.create_default_config(), {"config": {"scrape_configs": jobs}})
    assert validate_tree(config) == []
    sink = Sink()
    receiver = factory.create_metrics(settings_for(Kind.RECEIVER, "prometheus", Signal.METRICS), config, sink)  # type: ignore[misc]
    await receiver.start(None)
    try:
        deadline = time.monotonic() + timeout
        while not await until(sink):
            assert time.monotonic() < deadline, ups(sink)
            await asyncio.sleep(0.1)
    finally:
        await receiver.shutdown()
    return sink


async def test_mutual_tls_with_basic_auth_and_bearer_tokens_from_files(tmp_path: Path,
                                                                      pki: dict[str, Path]) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki["ca.pem"]))
    server_context.load_cert_chain(pki["server.pem"], pki["server.key"])
    server_context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no scrape
    runner, port, seen = await serve(server_context)
    (tmp_path / "password").write_text("pw\n")
    (tmp_path / "token").write_text("t0k\n")
    tls = {"ca_file": str(pki["ca.pem"]), "cert_file": str(pki["client.pem"]), "key_file": str(pki["client.key"])}
    base = {"scheme": "https", "scrape_interval": "300ms", "scrape_timeout": "300ms", "tls_config": tls,
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
    jobs = [
        {**base, "job_name": "basic", "metrics_path": "/basic",
         "basic_auth": {"username": "user", "password_file": str(tmp_path / "password")}},
        {**base, "job_name": "bearer", "metrics_path": "/bearer",
         "authorization": {"credentials_file": str(tmp_path / "token")}},
        {**base, "job_name": "wrong", "metrics_path": "/bearer", "authorization": {"credentials": "nope"}},
        {**base, "job_name": "no_client_cert", "metrics_path": "/bearer", "authorization": {"credentials": "t0k"},
         "tls_config": {"ca_file": str(pki["ca.pem"])}},
    ]

    async def all_scraped(sink: Sink) -> bool:
        return all(len(ups(sink).get(job["job_name"], [])) >= 2 for job in jobs)

    try:
        sink = await run_receiver(jobs, all_scraped)
    finally:
        await runner.cleanup()
    found = ups(sink)
    assert set(found["basic"]) == set(found["bearer"]) == {1.0}
    assert set(found["wrong"]) == set(found["no_client_cert"]) == {0.0}
    assert "Bearer nope" in seen and "Bearer t0k" in seen and "Basic dXNlcjpwdw==" in seen


async def test_file_sd_targets_come_and_go_and_removed_ones_go_stale(tmp_path: Path) -> None:
    runner, port, _ = await serve()
    targets = tmp_path / "targets.yaml"
    targets.write_text("[]\n")
    job = {"job_name": "sd", "scrape_interval": "200ms", "scrape_timeout": "200ms", "metrics_path": "/bearer",
           "authorization": {"credentials": "t0k"},
           "file_sd_configs": [{"files": [str(tmp_path / "*.yaml")], "refresh_interval": "200ms"}]}
    state = {"phase": 0, "at": 0}

    async def added_then_removed(sink: Sink) -> bool:
        scraped = len(ups(sink).get("sd", []))
        if state["phase"] == 0:
            targets.write_text(yaml.safe_dump([{"targets": [f"127.0.0.1:{port}"], "labels": {"team": "x"}}]))
            state["phase"] = 1
        elif state["phase"] == 1 and scraped >= 2:
            targets.write_text("[]\n")
            state["phase"], state["at"] = 2, scraped
        elif state["phase"] == 2:
            return any(p.flags == pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
                       for b in sink.batches[Signal.METRICS] for rm in b.resource_metrics
                       for sm in rm.scope_metrics for m in sm.metrics if m.name == "jobs_total"
                       for p in m.sum.data_points)
        return False

    try:
        sink = await run_receiver([job], added_then_removed)
    finally:
        await runner.cleanup()
    points = [(p.as_double, p.flags, {kv.key: kv.value.string_value for kv in p.attributes})
              for b in sink.batches[Signal.METRICS] for rm in b.resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics if m.name == "jobs_total" for p in m.sum.data_points]
    assert points[0] == (3.0, 0, {"team": "x"}) and points[-1] == (0.0, 1, {"team": "x"})
    await asyncio.sleep(0.5)
    assert len(ups(sink)["sd"]) >= 2  # and no scrape after the target went away (the receiver is stopped anyway)
