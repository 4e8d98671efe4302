"""KPI state survives a restart through file_storage: up/down counters and ratio windows come back, a changed
KPI starts empty, an unreadable file is set aside."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from gateway._host.service import Service
from gateway.component import Kind
from gateway.configtypes import decode
from plugins.connectors.kpi.config import Config
from plugins.connectors.kpi.engine import KpiEngine
from plugins.connectors.kpi.state import StateFile, restore, snapshot

ROOT = Path(__file__).resolve().parents[4]


def events(*items: tuple[str, dict[str, str]]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for name, attributes in items:
        record = scope.log_records.add(event_name=name, time_unix_nano=time.time_ns())
        record.attributes.extend(KeyValue(key=k, value={"string_value": v}) for k, v in attributes.items())
    return request


def enter(queue: str) -> tuple[str, dict[str, str]]:
    return "contact.queue.enter", {"contact.queue": queue}


def leave(queue: str) -> tuple[str, dict[str, str]]:
    return "contact.queue.leave", {"contact.queue": queue}


def agent(previous: str, now: str) -> tuple[str, dict[str, str]]:
    return "agent.state.change", {"agent.previous_state": previous, "agent.state": now}


def override(tmp_path: Path) -> Path:
    path = tmp_path / "override.yaml"
    path.write_text(textwrap.dedent(f"""
        extensions:
          file_storage: {{directory: "{tmp_path / 'state'}", create_directory: true}}
        receivers:
          otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
        connectors:
          spanmetrics: {{metrics_flush_interval: 100ms}}
          kpi/callcenter: {{metrics_flush_interval: 100ms, storage: file_storage}}
        exporters:
          prometheus: {{endpoint: "127.0.0.1:0"}}
        service:
          extensions: [file_storage]
          telemetry: {{metrics: {{address: ""}}}}
        """))
    return path


async def scrape(service: Service) -> dict[str, float]:
    """callcenter_* samples of the exporter, by name and labels (job and instance left out)."""
    address = service.graph.find(Kind.EXPORTER, "prometheus").address
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}/metrics") as response:
        text = await response.text()
    out = {}
    for line in text.splitlines():
        match = re.match(r'^(callcenter_(?:queue_depth|agents_available))(?:\{(.*)\})? (\S+)$', line)
        if match:
            labels = ",".join(sorted(p for p in re.findall(r'(\w+="[^"]*")', match.group(2) or "")
                                     if not p.startswith(("job=", "instance=", "otel_scope_name="))))
            out[f"{match.group(1)}{{{labels}}}"] = float(match.group(3))
    return out


async def wait_for(service: Service, expected: dict[str, float]) -> None:
    deadline = time.monotonic() + 10
    while (seen := await scrape(service)) != expected:
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.05)


async def send(service: Service, request: ExportLogsServiceRequest) -> None:
    address = service.graph.find(Kind.RECEIVER, "otlp").grpc_address
    async with grpc.aio.insecure_channel(address) as channel:
        await logs_service_pb2_grpc.LogsServiceStub(channel).Export(request, timeout=10)


async def test_up_down_counters_survive_a_restart(tmp_path: Path) -> None:
    files = [str(ROOT / "configs/kpi/gateway.yaml"), str(ROOT / "configs/kpi/callcenter.yaml"),
             str(override(tmp_path))]
    before = {'callcenter_queue_depth{queue="billing"}': 2.0, 'callcenter_queue_depth{queue="sales"}': 1.0,
              "callcenter_agents_available{}": 1.0}
    service = Service.from_files(files)
    await service.start()
    try:
        await send(service, events(enter("billing"), enter("billing"), enter("billing"), leave("billing"),
                                   enter("sales"), agent("away", "available"), agent("away", "available"),
                                   agent("available", "busy")))
        await wait_for(service, before)
    finally:
        assert await service.shutdown() == []
    state = json.loads((tmp_path / "state" / "connector_kpi_kpi_callcenter" / "kpi-state.json").read_text())
    assert state["version"] == 1

    service = Service.from_files(files)  # a new process would read the same file
    await service.start()
    try:
        await wait_for(service, before)  # restored before any new event
        await send(service, events(leave("billing"), agent("busy", "available")))
        await wait_for(service, {**before, 'callcenter_queue_depth{queue="billing"}': 1.0,
                                 "callcenter_agents_available{}": 2.0})
    finally:
        assert await service.shutdown() == []


def engine() -> KpiEngine:
    import yaml

    raw = yaml.safe_load((ROOT / "configs/kpi/callcenter.yaml").read_text())["connectors"]["kpi/callcenter"]
    return KpiEngine(decode(Config(), raw))


def values(request: Any) -> dict[str, list[tuple[tuple[tuple[str, str], ...], float]]]:
    out: dict[str, list[Any]] = {}
    for metric in request.resource_metrics[0].scope_metrics[0].metrics:
        data = getattr(metric, metric.WhichOneof("data"))
        points = [(tuple((kv.key, kv.value.string_value) for kv in p.attributes),
                   getattr(p, "as_double", 0.0) or float(getattr(p, "count", 0))) for p in data.data_points]
        out[metric.name] = sorted(points)
    return out


def test_snapshot_and_restore_give_the_same_metrics_and_windows_age() -> None:
    first = engine()
    first.add_logs(events(enter("billing"), enter("billing"), agent("away", "available"),
                          agent("available", "busy"), agent("busy", "wrap_up")))
    request = ExportLogsServiceRequest()
    first.add_logs(request)
    saved = json.loads(json.dumps(snapshot(first)))
    second = engine()
    assert restore(second, saved) > 0
    now = time.time_ns()
    assert values(second.build(now)) == values(first.build(now))
    # 16 minutes later the 15-minute utilization window is empty; the up/down counters are not.
    saved["written_at"] -= 16 * 60
    third = engine()
    restore(third, saved)
    after = values(third.build(now))
    assert "callcenter.agent.utilization" not in after
    assert after["callcenter.queue.depth"] == values(first.build(now))["callcenter.queue.depth"]


def test_a_changed_kpi_starts_empty_and_a_bad_file_is_set_aside(tmp_path: Path) -> None:
    first = engine()
    first.add_logs(events(enter("billing")))
    saved = snapshot(first)
    ((identity, entry),) = [(k, v) for k, v in saved["kpis"].items() if '"callcenter.queue.depth"' in k]
    saved["kpis"] = {identity.replace('"updown"', '"counter"'): entry}
    second = engine()
    assert restore(second, saved) == 0
    store = StateFile(tmp_path, fsync=False)
    store.path.write_text("{not json")
    try:
        store.load()
        raise AssertionError("an unreadable file must raise")
    except ValueError as exc:
        assert "set aside" in str(exc)
    assert not store.path.exists() and (tmp_path / "kpi-state.corrupt").exists()
    assert store.load() is None
    store.save(snapshot(first))
    assert store.load() == json.loads(store.path.read_text())


def test_readme_storage_example_merges_after_the_pack(tmp_path: Path) -> None:
    from gateway._host.registry import load_registry
    from gateway._host.service import load_config

    readme = (ROOT / "plugins/connectors/kpi/README.md").read_text()
    example = readme.split("## State across restarts and replicas")[1].split("```yaml\n")[1].split("```")[0]
    path = tmp_path / "storage.yaml"
    path.write_text(example.replace("/var/lib/otelgw", str(tmp_path / "state")))
    config = load_config([str(ROOT / "configs/kpi/gateway.yaml"), str(ROOT / "configs/kpi/callcenter.yaml"),
                          str(path)], load_registry())
    assert [str(e) for e in config.extensions] == ["file_storage"]
