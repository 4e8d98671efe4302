"""The Prometheus exporters and the KPI packs against a real Prometheus (Debian's package, 2.42).

A known workload (bench/kpi_workload.py) goes through a gateway built from the shipped configs
(configs/kpi/gateway.yaml and the three packs) over OTLP/gRPC. Prometheus then either scrapes the ``prometheus``
exporter or receives ``prometheus_remote_write``; its query API must return every expected value exactly.
promtool checks the exposition and the shipped recording and alert rules. Without the binaries these tests
skip and say why.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from gateway._host.service import Service
from gateway.component import Kind

ROOT = Path(__file__).resolve().parent.parent
PACKS = [ROOT / "configs/kpi" / f"{name}.yaml" for name in ("gateway", "callcenter", "llm_agent", "crm")]
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

needs_prometheus = pytest.mark.skipif(
    not Path(PROMETHEUS).is_file(),
    reason="Debian's prometheus package is not installed (tests/install-test-servers.sh installs it as root)")
needs_promtool = pytest.mark.skipif(
    not Path(PROMTOOL).is_file(),
    reason="promtool (from Debian's prometheus package) is not installed; tests/install-test-servers.sh does it")


def _load_workload() -> Any:
    spec = importlib.util.spec_from_file_location("kpi_workload", ROOT / "bench/kpi_workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kpi_workload"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


workload_module = _load_workload()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """A prometheus process on a loopback port with a temporary data directory, killed at the end."""

    def __init__(self, tmp_path: Path, scrape_target: str | list[str] | None = None, remote_write: bool = False,
                 rule_files: list[Path] | None = None) -> None:
        self.dir = tmp_path / "prometheus"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scrape = ""
        targets = [scrape_target] if isinstance(scrape_target, str) else scrape_target or []
        if targets:
            # honor_labels: the exposition's job and instance (from the OTLP resource) are kept as they are.
            scrape = textwrap.dedent(f"""
                scrape_configs:
                  - job_name: otelgw
                    honor_labels: true
                    scrape_interval: 1s
                    static_configs: [{{targets: {json.dumps(targets)}}}]
                """)
        rules = f"rule_files: {json.dumps([str(f) for f in rule_files])}\n" if rule_files else ""
        (self.dir / "prom.yml").write_text("global: {scrape_interval: 1s, evaluation_interval: 1s}\n" + rules + scrape)
        self.args = [PROMETHEUS, f"--web.listen-address=127.0.0.1:{self.port}",
                     f"--storage.tsdb.path={self.dir / 'data'}", f"--config.file={self.dir / 'prom.yml'}"]
        if remote_write:
            self.args.append("--web.enable-remote-write-receiver")
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.log = open(self.dir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
                try:
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError("prometheus did not become ready within 30 s")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()

    async def query(self, session: aiohttp.ClientSession, expression: str) -> list[dict[str, Any]]:
        async with session.get(f"{self.url}/api/v1/query", params={"query": expression}) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]  # type: ignore[no-any-return]

    async def wait_for(self, expectations: list[Any], timeout: float = 30.0) -> None:
        """Poll until every expectation holds exactly; fail listing the ones that do not."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                wrong = []
                for expected in expectations:
                    result = await self.query(session, expected.promql)
                    values = [float(r["value"][1]) for r in result]
                    if len(values) != 1 or not math.isclose(values[0], expected.value, rel_tol=1e-9, abs_tol=1e-9):
                        wrong.append(f"{expected.promql} = {values}, expected {expected.value}")
                if not wrong:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{len(wrong)} of {len(expectations)} wrong:\n" + "\n".join(wrong))
                await asyncio.sleep(0.25)


def write_override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(textwrap.dedent(text))
    return path


FAST = """
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0"}
      http: {endpoint: "127.0.0.1:0"}
connectors:
  spanmetrics: {metrics_flush_interval: 100ms}
  kpi/callcenter: {metrics_flush_interval: 100ms}
  kpi/llm_agent: {metrics_flush_interval: 100ms}
  kpi/crm: {metrics_flush_interval: 100ms}
exporters:
  prometheus: {endpoint: "127.0.0.1:0"}
service:
  telemetry: {metrics: {address: ""}}
"""


async def send_workload(service: Service, workload: Any) -> None:
    address = service.graph.find(Kind.RECEIVER, "otlp").grpc_address
    async with grpc.aio.insecure_channel(address) as channel:
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        logs = logs_service_pb2_grpc.LogsServiceStub(channel)
        for request in workload.traces:
            await traces.Export(request, timeout=10)
        for request in workload.logs:
            await logs.Export(request, timeout=10)


def dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard file, PromQL) of every panel, with Grafana's variables replaced by what matches anything."""
    queries = []
    for path in sorted((ROOT / "configs/grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "1m")
                queries.append((path.name, re.sub(r"\$[a-z_]+", ".*", expr)))
    return queries


async def check_dashboards(prometheus: PrometheusServer, session: aiohttp.ClientSession) -> None:
    """Every panel query is valid PromQL, and every KPI panel finds series in the workload's data (waiting up to a
    minute in all: on a loaded machine the connectors' flushes and Prometheus' scrapes can lag)."""
    deadline = time.monotonic() + 60
    for name, expr in dashboard_queries():
        while True:
            result = await prometheus.query(session, expr)
            if result or not name.startswith("kpi-"):
                break
            assert time.monotonic() < deadline, f"{name}: {expr} finds no series"
            await asyncio.sleep(0.25)


async def exposition(address: str, accept: str = "text/plain;version=0.0.4") -> bytes:
    async with aiohttp.ClientSession() as session, session.get(
            f"http://{address}/metrics", headers={"Accept": accept}) as response:
        return await response.read()


@needs_prometheus
async def test_prometheus_scraping_the_exporter_sees_exact_span_metrics_and_kpis(tmp_path, prometheus_servers):
    service = Service.from_files([str(p) for p in PACKS] + [str(write_override(tmp_path, FAST))])
    await service.start()
    try:
        workload = workload_module.pack_workload(time.time_ns())
        await send_workload(service, workload)
        exporter = service.graph.find(Kind.EXPORTER, "prometheus")
        deadline = time.monotonic() + 10
        while b"crm_workflow_failures_total" not in await exposition(exporter.address):
            assert time.monotonic() < deadline, "the packs' metrics never reached the exporter"
            await asyncio.sleep(0.05)
        prometheus = prometheus_servers(tmp_path, scrape_target=exporter.address)
        await prometheus.start()
        await prometheus.wait_for(workload.expected)
        async with aiohttp.ClientSession() as session:
            [target] = await prometheus.query(session, 'target_info{job="contact-center"}')
            assert target["metric"]["instance"] == "cc-1"
            assert target["metric"]["deployment_environment_name"] == "test"
            await check_dashboards(prometheus, session)
    finally:
        assert await service.shutdown() == []


@pytest.fixture
def prometheus_servers():
    """Every PrometheusServer a test makes through this is stopped at the end, also when the test fails."""
    started: list[PrometheusServer] = []

    def make(*args: Any, **kwargs: Any) -> PrometheusServer:
        server = PrometheusServer(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@needs_prometheus
async def test_prometheus_receives_the_same_through_remote_write(tmp_path, prometheus_servers):
    prometheus = prometheus_servers(tmp_path, remote_write=True)
    await prometheus.start()
    # A file of its own after FAST: one YAML document with two ``service:`` keys would keep only the last one
    # (and so bind the default metrics port).
    override = textwrap.dedent(f"""
        exporters:
          prometheusremotewrite:
            endpoint: "{prometheus.url}/api/v1/write"
            remote_write_queue: {{num_consumers: 4}}
        service:
          pipelines:
            metrics/spanmetrics: {{exporters: [prometheusremotewrite]}}
            metrics/kpi_callcenter: {{exporters: [prometheusremotewrite]}}
            metrics/kpi_llm_agent: {{exporters: [prometheusremotewrite]}}
            metrics/kpi_crm: {{exporters: [prometheusremotewrite]}}
        """)
    (tmp_path / "rw").mkdir()
    service = Service.from_files([str(p) for p in PACKS] + [str(write_override(tmp_path, FAST)),
                                                            str(write_override(tmp_path / "rw", override))])
    await service.start()
    try:
        workload = workload_module.pack_workload(time.time_ns())
        await send_workload(service, workload)
        await prometheus.wait_for(workload.expected)
        # Keep flushing for a while (every series written every 100 ms from 4 concurrent shards): not one
        # request may be refused, out-of-order samples included.
        await asyncio.sleep(1.0)
        registry = service.telemetry.registry
        labels = {"exporter": "prometheusremotewrite"}
        assert registry.get_sample_value("otelcol_exporter_sent_metric_points_total", labels) > 0
        assert not registry.get_sample_value("otelcol_exporter_send_failed_metric_points_total", labels)
        assert not registry.get_sample_value("otelgw_exporter_retries_total", {**labels, "data_type": "metrics"})
    finally:
        assert await service.shutdown() == []


@needs_promtool
async def test_promtool_accepts_the_exposition(tmp_path):
    service = Service.from_files([str(p) for p in PACKS] + [str(write_override(tmp_path, FAST))])
    await service.start()
    try:
        await send_workload(service, workload_module.pack_workload(time.time_ns()))
        exporter = service.graph.find(Kind.EXPORTER, "prometheus")
        deadline = time.monotonic() + 10
        while b"crm_workflow_failures_total" not in (body := await exposition(exporter.address)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        assert await service.shutdown() == []
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)
    findings = (result.stdout + result.stderr).decode().splitlines()
    # The only finding allowed: span_metrics' duration is in milliseconds, as the Collector's is by default.
    allowed = [line for line in findings if 'use base unit "seconds" instead of "milliseconds"' in line]
    assert result.returncode in (0, 3) and findings == allowed, findings
    assert all(line.startswith("traces_span_metrics_duration_milliseconds") for line in allowed)
    blocks = body.split(b"# HELP ")[1:]
    kpi_only = b"".join(b"# HELP " + block for block in blocks if not block.startswith(b"traces_span_metrics"))
    assert b"callcenter_service_level_ratio" in kpi_only and b"target_info" in kpi_only
    clean = subprocess.run([PROMTOOL, "check", "metrics"], input=kpi_only, capture_output=True, timeout=30)
    assert clean.returncode == 0, clean.stdout + clean.stderr


@needs_promtool
def test_promtool_accepts_the_shipped_rules():
    result = subprocess.run([PROMTOOL, "check", "rules", str(ROOT / "configs/prometheus/rules.yml")],
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"SUCCESS" in result.stdout
