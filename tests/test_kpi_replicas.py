"""A ratio KPI computed by two gateway replicas behind a load_balancing tier equals the one computed from all the
data: routing by the KPI's label (the service) brings every span of a service to one replica."""

from __future__ import annotations

import asyncio
import contextlib
import random
from pathlib import Path

import aiohttp
from inprocess import running

from gateway._host.config import build_config
from gateway._host.confmap import load_files
from gateway._host.registry import load_registry
from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.testing import make_traces
from gateway.testing.otlp_sink import OtlpSink

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
