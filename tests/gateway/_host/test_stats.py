"""The stats snapshot behind ``otelgw top`` and the status page: KPI board, rates, secrets in the config."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from gateway._host.cli_top import _unit, render, sparkline
from gateway._host.service import Service
from gateway._host.stats import effective_config
from gateway.component import Kind
from gateway.testing import make_traces

CONFIG = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
    connectors:
      kpi/shop:
        metrics_flush_interval: 100ms
        kpis:
          - name: shop.checkouts
            unit: "{checkout}"
            match: {span_names: [checkout]}
            labels:
              - {name: store, attribute: store, default: unknown}
    exporters:
      debug: {}
      otlp_http/backend: {endpoint: "http://127.0.0.1:9", headers: {authorization: "Bearer sk-live-123456"}}
    service:
      admin: {endpoint: "127.0.0.1:0", token: stats-test-token}
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces: {receivers: [otlp], exporters: [kpi/shop]}
        metrics: {receivers: [kpi/shop], exporters: [debug]}
        logs: {receivers: [otlp], exporters: [otlp_http/backend]}
""")


async def test_kpis_reach_the_snapshot_with_history(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(CONFIG)
    service = Service.from_files([str(path)])
    await service.start()
    try:
        inlet = next(n for n in service.graph.nodes if n.kind is Kind.RECEIVER and n.signal.value == "traces")
        for count in (3, 4):
            batch = make_traces(count, attributes={"store": "berlin"})
            for rs in batch.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        span.name = "checkout"
            await inlet.outlets[0].consume_traces(batch)
            await asyncio.sleep(0.35)
        snapshot = service.stats.snapshot(config=True)
    finally:
        await service.shutdown()
    kpis = [k for k in snapshot["kpis"] if k["name"] == "shop.checkouts"]
    assert len(kpis) == 1
    kpi = kpis[0]
    assert kpi["connector"] == "kpi/shop" and kpi["labels"] == "store=berlin" and kpi["unit"] == "{checkout}"
    assert kpi["value"] == 7 and 3 in kpi["history"] and kpi["history"][-1] == 7
    # the secret header is masked in the effective configuration, wherever it appears
    assert "sk-live-123456" not in repr(snapshot["config"])
    assert snapshot["config"]["exporters"]["otlp_http/backend"]["headers"]["authorization"] == "<redacted>"
    assert snapshot["config"]["service"]["admin"]["token"] == "<redacted>"
    # the top view renders it (business view with a sparkline)
    from rich.console import Console

    console = Console(width=160, record=True)
    console.print(render({"stats": snapshot, "alerts": []}))
    text = console.export_text()
    assert "shop.checkouts" in text and "store=berlin" in text and "7 checkout" in text


def test_sparkline_and_effective_config() -> None:
    assert sparkline([]) == ""
    assert sparkline([1, 1, 1]) == "▁▁▁"
    assert sparkline([0, 5, 10]) == "▁▅█"
    assert (_unit("1"), _unit("{contact}"), _unit("s"), _unit("")) == ("", "contact", "s", "")
    assert effective_config({"extensions": {"bearertokenauth": {"tokens": ["abcd1234", "efgh5678"]}}}) == {
        "extensions": {"bearertokenauth": {"tokens": ["<redacted>", "<redacted>"]}}}


def test_totals_read_every_family_into_its_component() -> None:
    """Each self-metric lands in the totals of the component its label names, per signal alike."""
    from prometheus_client import Counter

    from gateway._host.stats import _totals
    from gateway._host.telemetry import Telemetry

    telemetry = Telemetry()
    for n, item in enumerate(("spans", "metric_points", "log_records"), start=1):
        telemetry.receiver_accepted[item].labels("otlp", "grpc").inc(10 * n)
        telemetry.receiver_refused[item].labels("otlp", "grpc").inc(n)
        telemetry.exporter_sent[item].labels("otlp_http").inc(100 * n)
        telemetry.exporter_send_failed[item].labels("otlp_http").inc(2 * n)
        telemetry.exporter_enqueue_failed[item].labels("otlp_http").inc(3 * n)
    telemetry.receiver_bad_requests.labels("otlp", "http", "size").inc(7)
    telemetry.processor_incoming.labels("batch", "traces").inc(50)
    telemetry.processor_outgoing.labels("batch", "traces").inc(40)
    telemetry.component_dropped.labels("batch", "traces", "filtered").inc(4)
    telemetry.exporter_queue_size.labels("otlp_http", "logs").set(5)
    telemetry.exporter_queue_capacity.labels("otlp_http", "logs").set(1000)
    telemetry.exporter_send_latency.labels("otlp_http", "logs").observe(0.5)
    telemetry.exporter_send_latency.labels("otlp_http", "logs").observe(1.5)
    Counter("otelcol_processor_refused_spans", "", ["processor"], registry=telemetry.registry).labels("limit").inc(9)
    telemetry.connector_consumed.labels("kpi", "traces").inc(70)
    telemetry.connector_produced.labels("kpi", "metrics").inc(8)
    Counter("otelgw_connector_flush_failed_metric_points", "", ["connector"],
            registry=telemetry.registry).labels("kpi").inc(11)
    totals = {component: dict(values) for component, values in _totals(telemetry).items()}
    assert totals["receiver:otlp"] == {"out": 60, "in": 66, "refused": 6, "errors": 7}
    assert totals["exporter:otlp_http"] == {"out": 600, "in": 600 + 12 + 18, "errors": 12, "refused": 18,
                                            "queue_size": 5, "queue_capacity": 1000, "latency_sum": 2.0,
                                            "latency_count": 2}
    assert totals["processor:batch"] == {"in": 50, "out": 40}
    assert totals["processor:limit"] == {"refused": 9}
    assert totals["connector:kpi"] == {"in": 70, "out": 8, "errors": 11}
    assert totals["*:batch"] == {"dropped:filtered": 4}


def test_a_kpi_series_that_ended_leaves_the_board() -> None:
    """A ratio whose window emptied is sent with no recorded value: the board drops it rather than show 0."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from gateway._host.stats import KpiBoard

    def batch(ended: bool) -> ExportMetricsServiceRequest:
        request = ExportMetricsServiceRequest()
        metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="shop.success", unit="1")
        point = metric.gauge.data_points.add()
        point.attributes.add(key="store").value.string_value = "berlin"
        if ended:
            point.flags = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
        else:
            point.as_double = 0.75
        return request

    board = KpiBoard()
    board.record("kpi/shop", batch(ended=False))
    assert [(k["name"], k["labels"], k["value"]) for k in board.snapshot()] == [("shop.success", "store=berlin", 0.75)]
    board.record("kpi/shop", batch(ended=True))
    assert board.snapshot() == []


CONNECTORS = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:PORT"}}}
    processors:
      batch: {timeout: 1ms}
    connectors:
      forward: {}
      kpi/shop:
        metrics_flush_interval: 100ms
        kpis:
          - {name: shop.checkouts, match: {span_names: [checkout]}}
    exporters:
      debug: {}
    service:
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces: {receivers: [otlp], exporters: [forward, kpi/shop]}
        traces/out: {receivers: [forward], processors: [batch], exporters: [debug]}
        metrics: {receivers: [kpi/shop], exporters: [debug]}
""")


async def test_connectors_are_counted_in_and_out(tmp_path: Path) -> None:
    """A connector's items in and out (otelcol_connector_consumed_items / produced_items), counted by the graph
    around it, match what reached it and what the next pipeline's exporter sent; top and the page show them."""
    import sys

    import aiohttp

    sys.path.insert(0, str(Path(__file__).parents[2]))
    from gwproc import free_port

    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(CONNECTORS.replace("PORT", str(port)))
    service = Service.from_files([str(path)])
    await service.start()
    telemetry = service.telemetry

    def value(family: str, **labels: str) -> float:
        return sum(s.value for m in telemetry.registry.collect() if m.name == family for s in m.samples
                   if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items()))

    try:
        batch = make_traces(7)
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name = "checkout"
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{port}/v1/traces", data=batch.SerializeToString(),
                headers={"Content-Type": "application/x-protobuf"}) as answer:
            assert answer.status == 200
        for _ in range(100):  # the kpi connector flushes every 100 ms; the stats sample once a second
            await asyncio.sleep(0.1)
            if value("otelcol_exporter_sent_metric_points") and len(service.stats._samples) > 1:
                break
        await asyncio.sleep(1.1)  # a sample after the flush
        snapshot = service.stats.snapshot()
    finally:
        await service.shutdown()
    consumed, produced = "otelcol_connector_consumed_items", "otelcol_connector_produced_items"
    assert value(consumed, connector="forward", otel_signal="traces") == 7
    assert value(produced, connector="forward", otel_signal="traces") == 7
    assert value("otelcol_exporter_sent_spans", exporter="debug") == 7
    assert value(consumed, connector="kpi/shop", otel_signal="traces") == 7
    points = value(produced, connector="kpi/shop", otel_signal="metrics")
    assert points > 0 and points == value("otelcol_exporter_sent_metric_points", exporter="debug")
    components = {(c["kind"], c["id"]): c for c in snapshot["components"]}
    assert (components[("connector", "forward")]["in_total"], components[("connector", "forward")]["out_total"]) \
        == (7, 7)
    assert components[("connector", "kpi/shop")]["in_total"] == 7
    # it flushes every 100 ms: the snapshot (sampled up to a second before the end) saw some of the flushes
    assert 0 < components[("connector", "kpi/shop")]["out_total"] <= points


GATEWAY_VIEW = textwrap.dedent("""
    receivers:
      otlp: {protocols: {http: {endpoint: "127.0.0.1:0"}}}
    processors:
      memory_limiter: {check_interval: 1s, limit_mib: 4000, spike_limit_mib: 800}
    exporters:
      debug: {}
    service:
      telemetry: {metrics: {address: ""}}
      pipelines:
        traces: {receivers: [otlp], processors: [memory_limiter], exporters: [debug]}
""")


async def test_the_gateway_line_memory_against_the_limits_lag_and_config_generation(tmp_path: Path) -> None:
    """The gateway view of top and the page: resident memory next to the memory_limiter's soft and hard limits,
    the event loop's lag, uptime, taps attached and the config generation, which a reload moves on."""
    from rich.console import Console

    from gateway._host.stats import resident_bytes

    path = tmp_path / "gw.yaml"
    path.write_text(GATEWAY_VIEW)
    service = Service.from_files([str(path)])
    await service.start()
    try:
        await asyncio.sleep(1.2)  # one sample of the loop's lag
        before = service.stats.snapshot()["gateway"]
        path.write_text(GATEWAY_VIEW.replace("limit_mib: 4000", "limit_mib: 6000"))
        assert (await service.reload()).ok
        snapshot = service.stats.snapshot()
        after = snapshot["gateway"]
    finally:
        await service.shutdown()
    mib = 1024 * 1024
    assert (before["limit_bytes"], before["soft_limit_bytes"]) == (4000 * mib, 3200 * mib)
    assert (after["limit_bytes"], after["soft_limit_bytes"]) == (6000 * mib, 5200 * mib)  # the new limiter's
    assert (before["config_generation"], after["config_generation"]) == (0, 1)
    assert 0 < before["rss_bytes"] <= resident_bytes() * 2 and before["taps_attached"] == 0
    assert before["healthy"] is True and before["uptime_s"] >= 1.0
    assert 0 <= before["loop_lag_ms"] <= before["loop_lag_max_ms"]
    console = Console(width=200, record=True)
    console.print(render({"stats": snapshot, "alerts": None}))
    text = console.export_text()
    assert "(soft 5200 MiB, hard 6000 MiB)" in text and "config generation 1" in text
    assert f"RSS {after['rss_bytes'] / mib:.0f} MiB" in text and "loop lag" in text
