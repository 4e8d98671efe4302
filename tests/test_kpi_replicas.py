"""KPIs over several gateway replicas equal the ones computed from all the data.

- In Prometheus (the documented way, whatever reaches which replica): two replicas of the shipped call-centre pack,
  each sent an uneven share of the contacts and agent events through the real SDK, scraped by a real Prometheus
  that loads configs/prometheus/rules.yml. Each ratio there is the sum of the replicas' numerators over the sum of
  their denominators, and the up/down counters are summed: the values equal the ones computed by hand from the
  whole workload, and exactly the alerts the whole values call for are pending, where each replica alone would
  have paged differently.
- In the gateways, behind a load_balancing tier routing by service (configs/kpi/router.yaml): every span of a
  service reaches one replica, so a ratio labelled by service is whole there.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

import aiohttp
import pytest
from inprocess import running

from gateway._host.config import build_config
from gateway._host.confmap import load_files
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink
from tests.test_customer_service_end_to_end import Workload
from tests.test_prometheus_real import PROMETHEUS, PrometheusServer

ROOT = Path(__file__).resolve().parent.parent

SERVICES = [f"checkout-{i}" for i in range(8)]
QUIET = 'telemetry: {metrics: {address: ""}}'


def replica(index: int, sink: OtlpSink) -> str:
    return f"""
        receivers: {{otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}}}}}}}
        connectors:
          kpi/shop:
            metrics_flush_interval: 1h          # flushed once, at shutdown
            resource_attributes: {{service.name: otelgw-kpi, service.instance.id: replica-{index}}}
            kpis:
              - name: shop.checkout.success
                type: ratio
                unit: "1"
                window: 1h
                numerator: {{status_codes: [ok, unset]}}
                labels: [{{name: service, attribute: service.name}}]
        exporters:
          otlp_http: {{endpoint: "{sink.http_endpoint}", sending_queue: {{enabled: false}}}}
        service:
          {QUIET}
          pipelines:
            traces: {{receivers: [otlp], exporters: [kpi/shop]}}
            metrics: {{receivers: [kpi/shop], exporters: [otlp_http]}}
    """


def front(replicas: list[Service]) -> str:
    hostnames = ", ".join(str(r.graph.find(Kind.RECEIVER, "otlp").grpc_address) for r in replicas)
    return f"""
        receivers: {{otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}}}
        exporters:
          load_balancing:
            routing_key: service
            protocol: {{otlp: {{tls: {{insecure: true}}, sending_queue: {{enabled: false}}}}}}
            resolver: {{static: {{hostnames: [{hostnames}]}}}}
        service:
          {QUIET}
          pipelines:
            traces: {{receivers: [otlp], exporters: [load_balancing]}}
    """


def ratios(sink: OtlpSink) -> dict[str, list[tuple[str, float]]]:
    """service label → (replica, ratio) of every point received."""
    out: dict[str, list[tuple[str, float]]] = {}
    for batch in sink.batches(Signal.METRICS):
        for rm in batch.resource_metrics:
            instance = next(kv.value.string_value for kv in rm.resource.attributes
                            if kv.key == "service.instance.id")
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name != "shop.checkout.success":
                        continue
                    for point in metric.gauge.data_points:
                        label = next(kv.value.string_value for kv in point.attributes if kv.key == "service")
                        out.setdefault(label, []).append((instance, point.as_double))
    return out


async def test_ratio_kpi_over_two_replicas_routed_by_service_equals_the_whole(tmp_path: Path) -> None:
    rng = random.Random(7)
    sink = OtlpSink()
    await sink.start()
    expected: dict[str, tuple[int, int]] = {name: (0, 0) for name in SERVICES}
    try:
        async with contextlib.AsyncExitStack() as stack:
            replicas = [await stack.enter_async_context(running(tmp_path / f"replica-{i}.yaml", replica(i, sink)))
                        for i in range(2)]
            async with running(tmp_path / "front.yaml", front(replicas)) as tier:
                address = tier.graph.find(Kind.RECEIVER, "otlp").http_address
                async with aiohttp.ClientSession() as session:
                    for _ in range(12):
                        request = make_traces(0)
                        del request.resource_spans[:]
                        for name in rng.sample(SERVICES, 3):  # every request mixes services
                            spans, every = rng.randint(5, 40), rng.randint(2, 6)
                            part = make_traces(spans, service=name, error_every=every)
                            request.resource_spans.extend(part.resource_spans)
                            errors = len(range(0, spans, every))
                            ok, total = expected[name]
                            expected[name] = (ok + spans - errors, total + spans)
                        async with session.post(f"http://{address}/v1/traces", data=request.SerializeToString(),
                                                headers={"Content-Type": "application/x-protobuf"}) as answer:
                            assert answer.status == 200
            await asyncio.sleep(0)  # the replicas flush their KPIs when the stack closes them
    finally:
        await sink.stop()
    seen = ratios(sink)
    sent = {name for name, (_, total) in expected.items() if total}
    assert set(seen) == sent
    for name in sent:
        ok, total = expected[name]
        replicas_of = {instance for instance, _ in seen[name]}
        assert len(replicas_of) == 1, f"{name} was split over {replicas_of}"
        assert seen[name][-1][1] == ok / total
    assert {instance for points in seen.values() for instance, _ in points} == {"replica-0", "replica-1"}


def test_the_shipped_routing_tier_loads() -> None:
    """configs/kpi/router.yaml, the documented deployment of the test above, is a valid config."""
    raw = load_files([Path(__file__).resolve().parent.parent / "configs/kpi/router.yaml"], environ={})
    config = build_config(raw, load_registry())
    routed = {str(p.id): [str(e) for e in p.exporters] for p in config.pipelines.values()}
    assert routed == {"traces": ["load_balancing"], "logs": ["load_balancing"]}


# ------------------------------------------------------------------ evaluated in Prometheus

def pack_replica(tmp_path: Path, index: int) -> Service:
    """A replica as the README deploys one: the shipped base and call-centre pack, on free ports."""
    override = tmp_path / f"pack-replica-{index}.yaml"
    override.write_text(f"""
receivers:
  otlp: {{protocols: {{grpc: {{endpoint: "127.0.0.1:0"}}, http: {{endpoint: "127.0.0.1:0"}}}}}}
connectors:
  spanmetrics: {{metrics_flush_interval: 200ms}}
  kpi/callcenter:
    metrics_flush_interval: 200ms
    resource_attributes: {{service.instance.id: replica-{index}}}   # pods have distinct host names
exporters:
  prometheus: {{endpoint: "127.0.0.1:0"}}
service:
  {QUIET}
""")
    return Service.from_files([str(ROOT / "configs/kpi/gateway.yaml"), str(ROOT / "configs/kpi/callcenter.yaml"),
                               str(override)])


#: Each replica's share: (queue, wait in seconds, outcome). billing: 7 of 10 answered within 20 s, 3 abandoned;
#: replica 0 alone sees 2 of 4 (50%, a critical page there), replica 1 5 of 6.
SHARES = [
    [("billing", 10, "answered"), ("billing", 20, "answered"), ("billing", 30, "abandoned"),
     ("billing", 50, "abandoned"), ("sales", 5, "answered"), ("sales", 12, "answered")],
    [("billing", 5, "answered"), ("billing", 8, "answered"), ("billing", 15, "answered"), ("billing", 20, "answered"),
     ("billing", 19, "answered"), ("billing", 40, "abandoned"), ("sales", 3, "answered"), ("sales", 7, "answered")],
]
#: Agent state changes and queue events per replica: (event name, attributes).
EVENTS = [
    [("agent.state.change", {"agent.previous_state": "away", "agent.state": "available",
                             "agent.previous_state.duration": 600}),
     ("agent.state.change", {"agent.previous_state": "away", "agent.state": "available",
                             "agent.previous_state.duration": 300})]
    + [("contact.queue.enter", {"contact.queue": "billing"})] * 3,
    [("agent.state.change", {"agent.previous_state": "available", "agent.state": "busy",
                             "agent.previous_state.duration": 120})]
    + [("contact.queue.leave", {"contact.queue": "billing"})] * 2,
]


def send_share(endpoint: str, index: int) -> None:
    workload = Workload(endpoint)
    try:
        for queue, seconds, outcome in SHARES[index]:
            workload.span("contact-centre", "contact.queue", seconds,
                          {"contact.queue": queue, "contact.channel": "voice", "contact.outcome": outcome})
        for name, attributes in EVENTS[index]:
            workload.event("contact-centre", name, attributes)
    finally:
        workload.close()


def by_hand() -> dict[str, dict[str, float]]:
    """The whole workload's KPIs per queue, and its up/down counters."""
    contacts = [c for share in SHARES for c in share]
    out: dict[str, dict[str, float]] = {}
    for queue in ("billing", "sales"):
        mine = [c for c in contacts if c[0] == queue]
        out[queue] = {"service_level": sum(1 for _, s, o in mine if o == "answered" and s <= 20) / len(mine),
                      "abandoned": sum(1 for _, _, o in mine if o == "abandoned") / len(mine)}
    events = [e for share in EVENTS for e in share]
    out["counters"] = {
        "agents_available": sum((a["agent.state"] == "available") - (a["agent.previous_state"] == "available")
                                for n, a in events if n == "agent.state.change"),
        "queue_depth": sum({"contact.queue.enter": 1, "contact.queue.leave": -1}.get(n, 0) for n, _ in events)}
    return out


@pytest.mark.skipif(not Path(PROMETHEUS).is_file(),
                    reason="needs Debian's prometheus (tests/install-test-servers.sh installs it)")
async def test_ratio_kpis_and_counters_of_replicas_sharing_the_data_are_whole_in_prometheus(tmp_path: Path) -> None:
    expected = by_hand()
    assert expected["billing"] == {"service_level": 0.7, "abandoned": 0.3}  # high, not critical; abandonment pages
    assert expected["counters"] == {"agents_available": 1, "queue_depth": 1}
    async with contextlib.AsyncExitStack() as stack:
        replicas = []
        for index in range(2):
            service = pack_replica(tmp_path, index)
            await service.start()
            stack.push_async_callback(service.shutdown)
            replicas.append(service)
        prometheus = PrometheusServer(tmp_path, scrape_target=[r.graph.find(Kind.EXPORTER, "prometheus").address
                                                               for r in replicas],
                                      rule_files=[ROOT / "configs/prometheus/rules.yml"])
        stack.callback(prometheus.stop)
        await prometheus.start()
        for index, service in enumerate(replicas):
            await asyncio.to_thread(send_share, service.graph.find(Kind.RECEIVER, "otlp").grpc_address, index)

        async with aiohttp.ClientSession() as session:
            async def values(expression: str, label: str = "queue") -> dict[str, float]:
                return {r["metric"].get(label, ""): float(r["value"][1])
                        for r in await prometheus.query(session, expression)}

            async def settled(expression: str, want: dict[str, float], label: str = "queue") -> dict[str, float]:
                deadline = time.monotonic() + 45
                while True:
                    got = await values(expression, label)
                    if got.keys() == want.keys() and all(abs(got[k] - v) < 1e-9 for k, v in want.items()):
                        return got
                    assert time.monotonic() < deadline, f"{expression}: {got}, expected {want}"
                    await asyncio.sleep(0.5)

            # The parts summed over the replicas, as the exported rules read them, give the whole ratios.
            for kpi in ("service_level", "abandoned"):
                await settled(f"sum by (queue) (callcenter_{kpi}_numerator)"
                              f" / sum by (queue) (callcenter_{kpi}_denominator)",
                              {q: expected[q][kpi] for q in ("billing", "sales")})
            await settled("sum(callcenter_agents_available)", {"": 1.0}, label="__none__")
            await settled("sum by (queue) (callcenter_queue_depth)", {"billing": 1.0})
            # Each replica's own ratio is not the whole one: replica 0 alone would page critical (50% < 60%).
            own = {r["metric"]["instance"]: float(r["value"][1]) for r in await prometheus.query(
                session, 'callcenter_service_level_ratio{queue="billing"}')}
            assert own == {"replica-0": 0.5, "replica-1": 5 / 6}
            own_agents = {r["metric"]["instance"]: float(r["value"][1]) for r in await prometheus.query(
                session, "callcenter_agents_available")}
            assert own_agents == {"replica-0": 2.0, "replica-1": -1.0}  # replica 1 alone: "no agent available"

            # The shipped rules, evaluated by Prometheus: exactly the alerts the whole values call for. Their
            # for: is minutes, so they are pending, which is the same condition, held.
            want = {("CallCenterServiceLevelLow", "high", "billing"), ("CallCenterAbandonmentHigh", "warning",
                                                                           "billing")}
            deadline = time.monotonic() + 60
            while True:
                alerts = {(r["metric"]["alertname"], r["metric"]["severity"], r["metric"].get("queue", ""))
                          for r in await prometheus.query(session, "ALERTS")}
                if alerts == want:
                    break
                assert alerts <= want, f"unexpected alerts: {alerts - want}"
                assert time.monotonic() < deadline, f"alerts {alerts}, expected {want}"
                await asyncio.sleep(0.5)
            await asyncio.sleep(3)  # a few more scrapes and evaluations: still nothing else
            alerts = {(r["metric"]["alertname"], r["metric"]["severity"], r["metric"].get("queue", ""))
                      for r in await prometheus.query(session, "ALERTS")}
            assert alerts == want


async def test_a_ratio_whose_window_emptied_leaves_the_prometheus_exporter(tmp_path: Path) -> None:
    """A replica that stops getting a queue's data must stop counting in the sums: once the window holds no
    record, the ratio and its parts leave /metrics (they are not kept at their last value until they expire)."""
    config = f"""
        receivers: {{otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}}}
        connectors:
          kpi/shop:
            metrics_flush_interval: 100ms
            kpis:
              - {{name: shop.checkout.success, type: ratio, unit: "1", window: 2s,
                  numerator: {{status_codes: [ok, unset]}}, labels: [{{name: service, attribute: service.name}}]}}
        exporters:
          prometheus: {{endpoint: "127.0.0.1:0", metric_expiration: 1h}}
        service:
          {QUIET}
          pipelines:
            traces: {{receivers: [otlp], exporters: [kpi/shop]}}
            metrics: {{receivers: [kpi/shop], exporters: [prometheus]}}
    """
    async with running(tmp_path / "gateway.yaml", config) as service, aiohttp.ClientSession() as session:
        address = service.graph.find(Kind.RECEIVER, "otlp").http_address
        exporter = service.graph.find(Kind.EXPORTER, "prometheus").address
        request = make_traces(4, service="checkout", error_every=4)  # 3 of 4 succeed
        async with session.post(f"http://{address}/v1/traces", data=request.SerializeToString(),
                                headers={"Content-Type": "application/x-protobuf"}) as answer:
            assert answer.status == 200

        async def lines() -> list[str]:
            async with session.get(f"http://{exporter}/metrics") as response:
                text = await response.text()
            return sorted(line for line in text.splitlines() if line.startswith("shop_checkout_success"))

        deadline = time.monotonic() + 10
        while len(await lines()) < 3:
            assert time.monotonic() < deadline, await lines()
            await asyncio.sleep(0.05)
        values = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in await lines()}
        assert values == {"shop_checkout_success_denominator": 4.0, "shop_checkout_success_numerator": 3.0,
                          "shop_checkout_success_ratio": 0.75}
        deadline = time.monotonic() + 15  # the 2 s window empties; the exporter would otherwise keep them 1 h
        while await lines():
            assert time.monotonic() < deadline, await lines()
            await asyncio.sleep(0.1)
