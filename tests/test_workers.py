"""``otelgw run --workers N``: real worker processes sharing the receiver ports, traces routed to the worker that
owns them, one view of the whole gateway, reload and SIGTERM under load, a worker that dies."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from gateway._host import cli
from gateway._host.registry import load_registry
from gateway._host.workers.adminview import merge_stats
from gateway._host.workers.routing import split, split_trace_bytes
from gateway._host.workers.view import merge_expositions
from gateway.component import Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
from durability import Sender, report, wait_for_all
from gwproc import GatewayProcess, free_port, http_get, http_post

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="workers share ports by SO_REUSEPORT")


def _config(tmp_path: Path, sink: OtlpSink, ports: dict[str, int], policy: str,
            decision_wait: str = "500ms") -> Path:
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
          tail_sampling:
            decision_wait: {decision_wait}
            policies: [{policy}]
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: test-token}}
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], processors: [tail_sampling], exporters: [otlp]}}
    """))
    return config


def _ports() -> dict[str, int]:
    return {name: free_port() for name in ("grpc", "http", "health", "metrics", "admin")}


ALWAYS = "{name: all, type: always_sample}"


@contextlib.asynccontextmanager
async def _workers(tmp_path: Path, policy: str) -> AsyncIterator[tuple[OtlpSink, dict[str, int], GatewayProcess]]:
    """A sink, and ``otelgw run --workers 2`` (tail_sampling with ``policy``) exporting to it, ready; both stopped
    at the end, also on failure."""
    sink = OtlpSink()
    await sink.start()
    ports = _ports()
    gateway = GatewayProcess(_config(tmp_path, sink, ports, policy), ports, tmp_path / "gateway.log")
    try:
        gateway.start("--workers", "2")
        await asyncio.to_thread(gateway.wait_ready, 60)
        yield sink, ports, gateway
    finally:
        gateway.kill()
        await sink.stop()


def _status(ports: dict[str, int]) -> dict:
    status, body = http_get(f"http://127.0.0.1:{ports['admin']}/status",
                            headers={"Authorization": "Bearer test-token"})
    assert status == 200, body
    return json.loads(body)


def _per_worker(gateway: GatewayProcess, name: str) -> dict[str, float]:
    """Samples of ``name`` from the merged self-metrics, summed per worker label."""
    _, body = http_get(f"http://127.0.0.1:{gateway.ports['metrics']}/metrics")
    totals: dict[str, float] = collections.defaultdict(float)
    for line in body.decode().splitlines():
        match = re.match(rf'^{re.escape(name)}\{{worker="(\d+)"[^}}]*\}} (\S+)$', line)
        if match:
            totals[match.group(1)] += float(match.group(2))
    return dict(totals)


# ---------------------------------------------------------------------------------------------- routing contract


def test_split_keeps_every_trace_whole_in_one_part() -> None:
    batch = make_traces(600, spans_per_trace=6)
    for count in (2, 3):
        parts = split(Signal.TRACES, batch, count, 0)
        assert len(parts) == count
        owner_of: dict[bytes, int] = {}
        seen = []
        for owner, part in parts.items():
            for rs in part.resource_spans:
                assert rs.resource == batch.resource_spans[0].resource
                for ss in rs.scope_spans:
                    assert ss.scope.name == "gateway.testing"
                    for span in ss.spans:
                        assert owner_of.setdefault(span.trace_id, owner) == owner
                        assert int.from_bytes(span.trace_id[-8:]) % count == owner
                        seen.append(span.SerializeToString())
        originals = [s.SerializeToString() for s in batch.resource_spans[0].scope_spans[0].spans]
        assert sorted(seen) == sorted(originals)  # every span once, unchanged


def test_split_of_one_owner_is_the_batch_itself() -> None:
    batch = make_traces(8, spans_per_trace=8)  # one trace
    owner = int.from_bytes(batch.resource_spans[0].scope_spans[0].spans[0].trace_id[-8:]) % 2
    assert split(Signal.TRACES, batch, 2, 1 - owner) == {owner: batch}
    assert split(Signal.TRACES, ExportTraceServiceRequest(), 2, 1) == {1: ExportTraceServiceRequest()}


def test_split_of_received_bytes_gives_each_owner_what_the_message_split_does() -> None:
    batch = make_traces(300, spans_per_trace=3)
    extra = make_traces(90, spans_per_trace=9, service="other")
    batch.resource_spans.extend(extra.resource_spans)
    data = batch.SerializeToString()
    by_message = split(Signal.TRACES, batch, 3, 2)
    by_bytes = split_trace_bytes(data, 3, 2)
    assert set(by_bytes) == set(by_message) == {0, 1, 2}
    for owner, (piece, spans) in by_bytes.items():
        parsed = ExportTraceServiceRequest.FromString(piece)
        assert parsed == by_message[owner]
        assert spans == sum(len(ss.spans) for rs in parsed.resource_spans for ss in rs.scope_spans)
    one = make_traces(5, spans_per_trace=5)
    owner = int.from_bytes(one.resource_spans[0].scope_spans[0].spans[0].trace_id[-8:]) % 2
    assert split_trace_bytes(one.SerializeToString(), 2, 0) == {owner: (one.SerializeToString(), 5)}


def test_split_of_metrics_keeps_each_metric_of_a_resource_together() -> None:
    batch = ExportMetricsServiceRequest()
    for service in ("a", "b", "c"):
        rm = batch.resource_metrics.add()
        rm.resource.attributes.add(key="service.name").value.string_value = service
        scope = rm.scope_metrics.add()
        for n in range(40):
            metric = scope.metrics.add(name=f"m{n}")
            metric.gauge.data_points.add(as_int=n)
    parts = split(Signal.METRICS, batch, 2, 0)
    assert set(parts) == {0, 1}
    again = split(Signal.METRICS, batch, 2, 1)  # the owner does not depend on where it arrived
    placed = {}
    for owner, part in parts.items():
        for rm in part.resource_metrics:
            for scope in rm.scope_metrics:
                for metric in scope.metrics:
                    key = (rm.resource.SerializeToString(), metric.name)
                    assert key not in placed
                    placed[key] = owner
    assert len(placed) == 120
    assert {k: o for o, p in again.items() for rm in p.resource_metrics for sm in rm.scope_metrics
            for m in sm.metrics for k in [(rm.resource.SerializeToString(), m.name)]} == placed


def test_split_of_logs_leaves_records_without_trace_id_where_they_arrived() -> None:
    batch = ExportLogsServiceRequest()
    records = batch.resource_logs.add().scope_logs.add().log_records
    for i in range(20):
        records.add(body={"string_value": f"r{i}"}, trace_id=os.urandom(16) if i % 2 else b"")
    for here in (0, 1):
        parts = split(Signal.LOGS, batch, 2, here)
        untraced = [r.body.string_value for r in parts[here].resource_logs[0].scope_logs[0].log_records
                    if not r.trace_id]
        assert untraced == [f"r{i}" for i in range(0, 20, 2)]
        assert sum(len(p.resource_logs[0].scope_logs[0].log_records) for p in parts.values()) == 20


def test_merged_exposition_has_each_family_once_with_a_worker_label() -> None:
    one = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2.0\n# HELP b B.\n# TYPE b gauge\nb 1.0\n'
    two = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3.0\n'
    merged = merge_expositions({0: one, 1: two})
    assert merged.count("# TYPE a_total counter") == 1
    assert 'a_total{worker="0",x="1"} 2.0\na_total{worker="1",x="1"} 3.0' in merged
    assert 'b{worker="0"} 1.0' in merged


# ---------------------------------------------------------------------------------------------- refusals


def test_workers_refuse_a_receiver_each_worker_would_run_again(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "scrape.yaml"
    config.write_text(textwrap.dedent(f"""
        receivers:
          prometheus: {{config: {{scrape_configs: [{{job_name: x, static_configs: [{{targets: ["127.0.0.1:1"]}}]}}]}}}}
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}
        exporters: {{debug: {{}}}}
        service:
          telemetry: {{metrics: {{address: "127.0.0.1:{free_port()}"}}}}
          pipelines:
            metrics: {{receivers: [prometheus, otlp], exporters: [debug]}}
    """))
    assert cli.main(["run", "--config", str(config), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "receivers::prometheus: --workers 2 runs only receivers the workers can share" in err
    assert "receivers::otlp::protocols::grpc::endpoint: port 0 would give every worker a port of its own" in err


def test_workers_need_so_reuseport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    sink_port = free_port()
    config = tmp_path / "c.yaml"
    config.write_text(f"receivers: {{otlp: {{protocols: {{grpc: {{endpoint: '127.0.0.1:{sink_port}'}}}}}}}}\n"
                      "exporters: {debug: {}}\n"
                      "service: {telemetry: {metrics: {level: none}}, pipelines: {traces: {receivers: [otlp], "
                      "exporters: [debug]}}}\n")
    monkeypatch.delattr(socket, "SO_REUSEPORT")  # an OS without it
    assert cli.main(["run", "--config", str(config), "--workers", "2"]) == 2
    assert "--workers 2 needs the workers to share the receiver ports, but this operating system has no " \
           "SO_REUSEPORT" in capsys.readouterr().err


def test_workers_argument() -> None:
    assert cli._parser(load_registry()).parse_args(["run", "--config", "x"]).workers == 1
    assert 1 <= cli._parser(load_registry()).parse_args(["run", "--config", "x", "--workers", "auto"]).workers <= len(
        os.sched_getaffinity(0))  # fewer under a cgroup CPU quota
    with pytest.raises(SystemExit):
        cli._parser(load_registry()).parse_args(["run", "--config", "x", "--workers", "0"])


# ---------------------------------------------------------------------------------------------- real processes


def _send_alone(port: int, request: ExportTraceServiceRequest) -> None:
    """One request on a connection of its own, so the kernel picks a worker for it afresh."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        TraceServiceStub(channel).Export(request, timeout=30)


async def test_a_trace_spread_over_workers_is_decided_once_whole(tmp_path: Path) -> None:
    # Keep a trace when any of its spans says keep=kept: a worker seeing part of a trace would decide it wrongly.
    policy = "{name: marked, type: string_attribute, string_attribute: {key: keep, values: [kept]}}"
    async with _workers(tmp_path, policy) as (sink, ports, gateway):
        pids = {w["pid"] for w in _status(ports)["workers"]}
        assert len(pids) == 2 and gateway.pid not in pids
        traces = 24
        spans = {}  # trace id → its spans, sent one span per connection
        for t in range(traces):
            request = make_traces(4, spans_per_trace=4, service=f"svc-{t}")
            trace_spans = request.resource_spans[0].scope_spans[0].spans
            if t % 2 == 0:  # only the last span carries the mark
                mark = trace_spans[3].attributes.add()
                mark.key, mark.value.string_value = "keep", "kept"
            spans[trace_spans[0].trace_id] = [s.span_id for s in trace_spans]
            for i in range(4):
                single = ExportTraceServiceRequest()
                single.resource_spans.add().CopyFrom(request.resource_spans[0])
                del single.resource_spans[0].scope_spans[0].spans[:]
                single.resource_spans[0].scope_spans[0].spans.append(trace_spans[i])
                if i % 2:
                    await asyncio.to_thread(_send_alone, ports["grpc"], single)
                else:
                    status, body = await asyncio.to_thread(
                        http_post, f"http://127.0.0.1:{ports['http']}/v1/traces", single.SerializeToString(),
                        {"Content-Type": "application/x-protobuf", "Connection": "close"})
                    assert status == 200, body
        kept = [ids for t, (tid, ids) in enumerate(spans.items()) if t % 2 == 0]
        await wait_for_all(sink, [i for ids in kept for i in ids], 60, gateway)
        # Dropped traces have had their decision (kept ones, sent earlier or later, have arrived): none of theirs.
        accepted = _per_worker(gateway, "otelcol_receiver_accepted_spans_total")
        assert len(accepted) == 2 and all(v > 0 for v in accepted.values()), accepted  # both workers served
        routed = _per_worker(gateway, "otelgw_worker_routed_items_total")
        assert sum(routed.values()) > 0, routed
        # tail_sampling decides what still waits as it stops: every decision is final after this.
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
        delivered = collections.Counter(s.span_id for s in sink.spans())
        for t, ids in enumerate(spans.values()):
            if t % 2 == 0:
                assert [delivered[i] for i in ids] == [1, 1, 1, 1], f"trace {t} not delivered whole once"
            else:
                assert [delivered[i] for i in ids] == [0, 0, 0, 0], f"trace {t} partly kept"


async def test_reload_and_sigterm_under_load_lose_nothing_acknowledged(tmp_path: Path) -> None:
    async with _workers(tmp_path, ALWAYS) as (sink, ports, gateway):
        senders = [Sender(ports["grpc"]) for _ in range(4)]
        threads = [threading.Thread(target=s.run, daemon=True) for s in senders]
        try:
            await _reload_and_stop_under_load(tmp_path, sink, ports, gateway, senders, threads)
        finally:
            for sender in senders:
                sender.stop.set()


async def _reload_and_stop_under_load(tmp_path: Path, sink: OtlpSink, ports: dict[str, int], gateway: GatewayProcess,
                                      senders: list[Sender], threads: list[threading.Thread]) -> None:
    """Load from 4 senders; SIGHUP with a changed config; more load; SIGTERM: every acknowledged span arrives."""
    for thread in threads:
        thread.start()
    while sum(s.requests for s in senders) < 40:
        await asyncio.sleep(0.01)
    _config(tmp_path, sink, ports, ALWAYS, decision_wait="700ms")  # a real change
    gateway.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    while gateway.log().count("configuration reloaded") < 2:
        assert time.monotonic() < deadline, gateway.log()
        await asyncio.sleep(0.05)
    before = sum(s.requests for s in senders)
    while sum(s.requests for s in senders) < before + 40:
        await asyncio.sleep(0.01)
    assert await asyncio.to_thread(gateway.stop, 60) == 0, gateway.log()
    for sender in senders:
        sender.stop.set()
    for thread in threads:
        await asyncio.to_thread(thread.join, 30)
    acknowledged = [i for s in senders for i in s.acknowledged]
    assert len(acknowledged) >= 80 * 40
    lost, _ = report(sink, acknowledged)
    assert lost == 0


async def test_a_worker_that_dies_is_restarted_and_logged(tmp_path: Path) -> None:
    async with _workers(tmp_path, ALWAYS) as (sink, ports, gateway):
        victim = _status(ports)["workers"][1]["pid"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, gateway.log()
            workers = _status(ports)["workers"]
            if workers[1]["pid"] not in (None, victim) and all(w.get("ready") for w in workers):
                break
            await asyncio.sleep(0.1)
        assert f'"msg": "worker exited; restarting it", "worker": 1, "pid": {victim}' in gateway.log()
        status, body = http_post(f"http://127.0.0.1:{ports['admin']}/-/reload", b"{}",
                                 {"Authorization": "Bearer test-token", "Content-Type": "application/json"})
        assert status == 200 and [w["reloaded"] for w in json.loads(body)["workers"]] == [True, True], body
        assert gateway.metric("otelgw_worker_restarts_total", worker="1") == 1
        after = make_traces(40, spans_per_trace=2)  # 20 traces: both workers own some
        await asyncio.to_thread(_send_alone, ports["grpc"], after)
        await wait_for_all(sink, [s.span_id for s in after.resource_spans[0].scope_spans[0].spans], 60, gateway)
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()


async def test_readme_command_runs_the_default_config_as_workers(tmp_path: Path) -> None:
    """The README's ``otelgw run --config configs/default.yaml --workers auto`` (here 2, on free ports)."""
    ports = {name: free_port() for name in ("grpc", "http", "health", "metrics", "admin")}
    env = {"OTELGW_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}", "OTELGW_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
           "OTELGW_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
           "OTELGW_METRICS_ADDRESS": f"127.0.0.1:{ports['metrics']}",
           "OTELGW_ADMIN_ENDPOINT": f"127.0.0.1:{ports['admin']}", "OTELGW_ADMIN_TOKEN": "test-token"}
    config = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        gateway.start("--workers", "2")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    try:
        await asyncio.to_thread(gateway.wait_ready, 60)
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "hello"}]}]}]})
        for _ in range(8):  # fresh connections: both workers take some
            status, answer = await asyncio.to_thread(
                http_post, f"http://127.0.0.1:{ports['http']}/v1/traces", body.encode(),
                {"Content-Type": "application/json", "Connection": "close"})
            assert status == 200, answer
        assert gateway.metric("otelcol_receiver_accepted_spans_total") == 8
        assert len(_status(ports)["workers"]) == 2
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
        assert gateway.log().count('"msg": "gateway stopped"') == 3  # two workers and the supervisor
    finally:
        gateway.kill()


async def test_a_worker_that_cannot_start_stops_the_gateway_with_its_error(tmp_path: Path) -> None:
    """A port held by another program: the workers cannot bind it, and the gateway exits as one process would."""
    sink = OtlpSink()
    await sink.start()
    ports = _ports()
    taken = socket.socket()
    taken.bind(("127.0.0.1", ports["grpc"]))
    taken.listen()
    gateway = GatewayProcess(_config(tmp_path, sink, ports, ALWAYS), ports, tmp_path / "gateway.log")
    try:
        gateway.start("--workers", "2")
        assert gateway.process is not None
        assert await asyncio.to_thread(gateway.process.wait, 60) == 1
        assert "address already in use" in gateway.log().lower()
        assert '"msg": "a worker could not start; stopping"' in gateway.log()
    finally:
        taken.close()
        gateway.kill()
        await sink.stop()


async def test_a_second_gateway_with_workers_does_not_share_the_ports(tmp_path: Path) -> None:
    async with _workers(tmp_path, ALWAYS) as (_, ports, gateway):
        second = GatewayProcess(gateway.config_path, ports, tmp_path / "second.log").start("--workers", "2")
        try:
            assert second.process is not None
            assert await asyncio.to_thread(second.process.wait, 60) == 1
            claimed = min(ports["grpc"], ports["http"])  # the first port claimed
            assert f"port {claimed} is served by another otelgw run --workers already" in second.log()
        finally:
            second.kill()


def _connector_config(tmp_path: Path, ports: dict[str, int], connector: str, block: str) -> Path:
    """OTLP/gRPC traces into the connector ``connector`` (configured by the YAML ``block``), its metrics to a
    prometheus exporter on ``ports['prom']``."""
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        exporters:
          prometheus: {{endpoint: "127.0.0.1:{ports['prom']}"}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [{connector}]}}
            metrics: {{receivers: [{connector}], exporters: [prometheus]}}
    """) + "connectors:\n" + textwrap.indent(textwrap.dedent(block).strip("\n"), "  ") + "\n")
    return config


async def test_span_metrics_through_workers_add_up_in_the_prometheus_view(tmp_path: Path) -> None:
    """span_metrics (a stateful connector: its traces are routed) feeding a prometheus exporter, with 2 workers:
    the supervisor serves the exporter's endpoint, every worker's series labelled, summing to every span sent."""
    ports = {**_ports(), "prom": free_port()}
    config = _connector_config(tmp_path, ports, "span_metrics", "span_metrics: {metrics_flush_interval: 100ms}")
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        gateway.start("--workers", "2")
        await asyncio.to_thread(gateway.wait_ready, 60)
        for _ in range(10):  # 10 connections x 20 traces: both workers receive, both own traces
            await asyncio.to_thread(_send_alone, ports["grpc"], make_traces(40, spans_per_trace=2, service="shop"))
        deadline = time.monotonic() + 60
        while True:
            _, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{ports['prom']}/metrics")
            calls: dict[str, float] = collections.defaultdict(float)
            for m in re.finditer(r'^traces_span_metrics_calls_total\{worker="(\d)",[^}]*service_name="shop"[^}]*\} '
                                 r'(\S+)$', body.decode(), re.M):
                calls[m.group(1)] += float(m.group(2))
            if sum(calls.values()) >= 400 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert sum(calls.values()) == 400, body.decode()[-3000:]
        assert set(calls) == {"0", "1"}, calls  # each worker counted the traces it owns
        assert body.decode().count("# TYPE traces_span_metrics_calls_total counter") == 1
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
    finally:
        gateway.kill()


def _desk_events(logins: int, logouts: int, errors_every: int) -> ExportTraceServiceRequest:
    """Agents logging in and out, each event a trace of its own (so routing by trace would scatter them), and a
    few spans no KPI reads."""
    request = make_traces(logins + logouts + 5, spans_per_trace=1, service="desk")
    for i, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        if i < logins:
            span.name = "agent.login"
            if errors_every and i % errors_every == 0:
                span.status.code = 2
        elif i < logins + logouts:
            span.name = "agent.logout"
    return request


async def test_kpis_are_kept_by_one_worker_for_the_whole_gateway(tmp_path: Path) -> None:
    """kpi is a single-owner connector: with 2 workers, logins and logouts arriving on connections both workers
    serve give one up/down counter and one ratio, kept by worker 0, over every event; the other worker handed over
    its share (and only the spans some KPI reads)."""
    ports = {**_ports(), "prom": free_port()}
    config = _connector_config(tmp_path, ports, "kpi/desk", """
        kpi/desk:
          metrics_flush_interval: 100ms
          kpis:
            - name: desk.agents.available
              type: updown
              match: {span_names: [agent.login, agent.logout]}
              increment: {span_names: [agent.login]}
              decrement: {span_names: [agent.logout]}
            - name: desk.login.success
              type: ratio
              unit: "1"
              match: {span_names: [agent.login]}
              numerator: {status_codes: [ok, unset]}""")
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        gateway.start("--workers", "2")
        await asyncio.to_thread(gateway.wait_ready, 60)
        for _ in range(10):  # 10 connections: both workers receive; 20 logins (4 failed) and 10 logouts each
            await asyncio.to_thread(_send_alone, ports["grpc"], _desk_events(20, 10, errors_every=5))
        deadline = time.monotonic() + 60
        pattern = r'^desk_{}\{{worker="(\d)"[^}}]*\}} (\S+)$'
        while True:
            _, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{ports['prom']}/metrics")
            text = body.decode()
            available = dict(re.findall(pattern.format("agents_available"), text, re.M))
            success = dict(re.findall(pattern.format("login_success_ratio"), text, re.M))
            if (available.get("0") == "100.0" and success) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert available == {"0": "100.0"}, text[-3000:]  # 200 logins - 100 logouts, one series, worker 0's
        assert {worker: float(value) for worker, value in success.items()} == {"0": 0.8}, text[-3000:]
        sent = _per_worker(gateway, "otelgw_worker_routed_items_total")
        assert sent.get("1", 0) > 0, sent  # worker 1 took connections and handed their events over
        # Only KPI spans travel: 30 of the 35 spans of each request worker 1 took.
        _, body = await asyncio.to_thread(http_get, f"http://127.0.0.1:{ports['metrics']}/metrics")
        handed = re.findall(r'^otelgw_worker_routed_items_total\{worker="1",[^}]*direction="sent"[^}]*\} (\S+)$',
                            body.decode(), re.M)
        assert handed and float(handed[0]) % 30 == 0, handed
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
    finally:
        gateway.kill()


def _queue_config(tmp_path: Path, sink: OtlpSink, ports: dict[str, int]) -> Path:
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/queue: {{directory: "{tmp_path / 'queue'}", create_directory: true}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{storage: file_storage/queue}}
            retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 0}}
        service:
          extensions: [health_check, file_storage/queue]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp]}}
    """))
    return config


def _gone(config: Path) -> bool:
    """No process runs this configuration any more (workers die with their supervisor, a moment later)."""
    return subprocess.run(["pgrep", "-f", str(config)], capture_output=True).returncode != 0


async def test_persistent_queues_survive_a_change_of_the_worker_count(tmp_path: Path) -> None:
    """Each worker keeps its persistent queue in a directory of its own (one directory cannot be locked by two
    processes). Requests acknowledged by two workers, the backend down, everything SIGKILLed: a gateway restarted
    on its own takes both workers' queues over and delivers every request; then the way back, one process to two
    workers, delivers what the single gateway acknowledged."""
    sink = OtlpSink()
    await sink.start()
    ports = _ports()
    config = _queue_config(tmp_path, sink, ports)
    queue = tmp_path / "queue"
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        for phase, (before, after) in enumerate(((["--workers", "2"], []), ([], ["--workers", "2"]))):
            sink.clear()
            sink.fail_next(100_000, message="backend down")
            gateway.start(*before)
            await asyncio.to_thread(gateway.wait_ready, 60)
            names = [f"phase{phase}-{i}" for i in range(12)]
            for name in names:  # a connection each: with two workers, both take some
                await asyncio.to_thread(_send_alone, ports["grpc"], make_traces(3, service=name))
            homes = sorted(p.parent.name for p in queue.glob("*/exporter_otlp_traces"))
            if before:
                assert homes == ["worker-0", "worker-1"], homes
            else:
                assert (queue / "exporter_otlp_traces").is_dir()
            gateway.kill()  # SIGKILL, backend still down: everything acknowledged is only on disk
            deadline = time.monotonic() + 30
            while not _gone(config) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert sink.item_count(Signal.TRACES) == 0
            sink.clear()  # the backend is back
            gateway.start(*after)
            await asyncio.to_thread(gateway.wait_ready, 60)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = {batch.resource_spans[0].resource.attributes[0].value.string_value
                       for batch in sink.batches(Signal.TRACES)}
                if got >= set(names):
                    break
                await asyncio.sleep(0.1)
            assert got >= set(names), (sorted(set(names) - got), gateway.log())
            if after:  # the single gateway's queue is worker 0's now
                assert not (queue / "exporter_otlp_traces").exists()
                assert (queue / "worker-0" / "exporter_otlp_traces").is_dir()
            else:  # both workers' queues merged into the single gateway's
                assert not list(queue.glob("worker-*")), list(queue.iterdir())
            assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
    finally:
        gateway.kill()
        await sink.stop()


# ---------------------------------------------------------------------------------------------- the admin view


def test_merged_stats_add_counters_weigh_error_rates_and_keep_the_worst_status() -> None:
    def snapshot(sent: float, rate: float, error_rate: float | None, status: str, rss: int) -> dict:
        return {"gateway": {"ready": True, "healthy": status == "ok", "rss_bytes": rss, "loop_lag_ms": rss / 1e9,
                            "config_generation": 1, "uptime_s": 5.0},
                "components": [{"kind": "exporter", "id": "otlp", "out_total": sent, "in_per_s": rate,
                                "error_rate": error_rate, "dropped": {"full": 1.0}, "status": status,
                                "latency_ms": 10.0}],
                "graph": {"nodes": [], "edges": []}, "kpis": [{"name": "k", "value": 1.0}],
                "errors": [{"ts": f"2026-01-01T00:00:0{int(sent)}Z", "msg": "x"}]}

    merged = merge_stats({0: snapshot(3, 30.0, 0.1, "ok", 10**9), 1: snapshot(1, 10.0, 0.5, "recoverable_error",
                                                                                  2 * 10**9)}, 3)
    (otlp,) = merged["components"]
    assert otlp["out_total"] == 4 and otlp["dropped"] == {"full": 2.0}
    assert otlp["error_rate"] == 0.2  # (0.1 x 30 + 0.5 x 10) / 40: weighted by the items that arrived
    assert otlp["status"] == "recoverable_error"
    gateway = merged["gateway"]
    assert gateway["rss_bytes"] == 3 * 10**9 and gateway["loop_lag_ms"] == 2.0
    assert gateway["workers"] == 3 and gateway["workers_missing"] == [2] and gateway["ready"] is False
    assert [k["worker"] for k in merged["kpis"]] == [0, 1]
    assert [e["worker"] for e in merged["errors"]] == [1, 0]  # in time order


def _admin(ports: dict[str, int], path: str, body: dict | None = None) -> tuple[int, dict]:
    url, headers = f"http://127.0.0.1:{ports['admin']}{path}", {"Authorization": "Bearer test-token"}
    if body is None:
        status, raw = http_get(url, timeout=10, headers=headers)
    else:
        status, raw = http_post(url, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"})
    return status, json.loads(raw)


async def test_top_tap_and_alerts_see_every_worker_through_the_supervisor(tmp_path: Path) -> None:
    """With 2 workers, the admin endpoint answers for the whole gateway: /api/stats sums the workers' counters
    (what ``otelgw top`` shows), a tap streams from every worker, and alerts are listed from every worker, with
    a silence made and expired on all of them by one id."""
    ports = _ports()
    sink = OtlpSink()
    await sink.start()
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}}}}}
        connectors:
          span_metrics: {{metrics_flush_interval: 100ms}}
        processors:
          alerts:
            evaluation_interval: 100ms
            rules:
              - {{alert: ShopCalls, metric: traces.span.metrics.calls, aggregation: last, window: 1m, op: gt,
                 threshold: 0, for: 0s, severity: info, group_by: [service.name]}}
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
        service:
          extensions: [health_check]
          admin: {{endpoint: "127.0.0.1:{ports['admin']}", token: test-token}}
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp, span_metrics]}}
            metrics: {{receivers: [span_metrics], processors: [alerts], exporters: [otlp]}}
    """))
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        gateway.start("--workers", "2")
        await asyncio.to_thread(gateway.wait_ready, 60)
        for _ in range(10):  # separate connections: both workers receive, both own traces
            await asyncio.to_thread(_send_alone, ports["grpc"], make_traces(40, spans_per_trace=2, service="shop"))

        deadline = time.monotonic() + 60
        while True:  # the workers sample their counters once a second
            status, stats = await asyncio.to_thread(_admin, ports, "/api/stats")
            assert status == 200, stats
            exported = [c for c in stats["components"] if c["kind"] == "exporter" and c["id"] == "otlp"]
            if (exported and (exported[0]["out_total"] or 0) >= 400) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert stats["gateway"]["workers"] == 2 and stats["gateway"]["workers_missing"] == []
        assert sink.item_count(Signal.TRACES) == 400
        assert exported[0]["out_total"] >= 400  # spans and span_metrics' points: every worker's sends, summed

        top = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gateway", "top", "--admin", f"http://127.0.0.1:{ports['admin']}",
                             "--token", "test-token", "--once", "--output", "json"],
            capture_output=True, text=True, timeout=60)
        assert top.returncode == 0, top.stderr
        assert json.loads(top.stdout)["stats"]["gateway"]["workers"] == 2

        while True:
            status, alerts = await asyncio.to_thread(_admin, ports, "/api/alerts")
            assert status == 200, alerts
            workers = {a["worker"] for a in alerts["alerts"] if a["alertname"] == "ShopCalls"}
            if workers == {0, 1} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert workers == {0, 1}, alerts  # each worker evaluates the series of the traces it owns

        status, made = await asyncio.to_thread(_admin, ports, "/api/alerts/silences",
                                               {"matchers": {"alertname": "ShopCalls"}, "duration": "1h"})
        assert status == 200, made
        sid = made["silence"]["id"]
        status, alerts = await asyncio.to_thread(_admin, ports, "/api/alerts")
        assert all(a["silenced"] for a in alerts["alerts"] if a["alertname"] == "ShopCalls"), alerts
        status, expired = await asyncio.to_thread(_admin, ports, "/api/alerts/silences/expire", {"id": sid})
        assert status == 200, expired
        # The list is the union of every worker's: empty means expired on all, not only on the first that had it.
        assert (await asyncio.to_thread(_admin, ports, "/api/alerts/silences"))[1]["silences"] == []
        status, missing = await asyncio.to_thread(_admin, ports, "/api/alerts/silences/expire", {"id": sid})
        assert status == 404, missing

        tapped = asyncio.Event()

        async def send_while_tapping() -> None:
            while not tapped.is_set():
                await asyncio.to_thread(_send_alone, ports["grpc"], make_traces(10, service="tapped"))
                await asyncio.sleep(0.05)

        sending = asyncio.get_running_loop().create_task(send_while_tapping())
        tap = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gateway", "tap", "otlp", "--signal", "traces", "--limit", "20",
                             "--admin", f"http://127.0.0.1:{ports['admin']}", "--token", "test-token",
                             "--output", "json"],
            capture_output=True, text=True, timeout=60)
        assert tap.returncode == 0, tap.stderr
        batches = [json.loads(line) for line in tap.stdout.splitlines() if line.startswith("{")]
        services = {kv["value"]["stringValue"] for b in batches for rs in b["resourceSpans"]
                    for kv in rs["resource"]["attributes"] if kv["key"] == "service.name"}
        assert services == {"tapped"}
        assert sum(len(ss["spans"]) for b in batches for rs in b["resourceSpans"] for ss in rs["scopeSpans"]) == 20

        # The stream itself: one header for the whole gateway, then items from both workers, then the end.
        request = urllib.request.Request(f"http://127.0.0.1:{ports['admin']}/api/tap?component=otlp&limit=60",
                                         headers={"Authorization": "Bearer test-token"})
        try:
            stream = await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=30).read())
        finally:
            tapped.set()
            await sending
        messages = [json.loads(line) for line in stream.splitlines()]
        assert messages[0]["tap"]["workers"] == 2 and messages[0]["tap"]["rate"] == 100
        assert messages[-1]["end"] == "limit reached"
        assert {m["worker"] for m in messages if "data" in m} == {0, 1}
        assert sum(m["items"] for m in messages if "data" in m) >= 60
        assert await asyncio.to_thread(gateway.stop) == 0, gateway.log()
    finally:
        gateway.kill()
        await sink.stop()
