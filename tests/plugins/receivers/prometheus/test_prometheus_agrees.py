"""Against a real Prometheus (Debian's package): relabeling gives the target labels Prometheus gives, and values
scraped by the receiver, exposed by our ``prometheus`` exporter and scraped by Prometheus equal the target's own."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from gateway._host.service import Service
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.testing.otlp_sink import OtlpSink
from plugins.receivers.prometheus.config import GlobalConfig, ScrapeConfig
from plugins.receivers.prometheus.targets import build_targets, static_groups

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[3]


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


prometheus_real = _load("test_prometheus_real_for_scrape", ROOT / "tests/test_prometheus_real.py")
scrape_real = _load("test_scrape_real_helpers", HERE / "test_scrape_real.py")
needs_prometheus = prometheus_real.needs_prometheus

RELABEL_JOB: dict[str, Any] = {
    "job_name": "relabel",
    "scrape_interval": "1h",
    "scrape_timeout": "1s",
    "params": {"module": ["http_2xx"]},
    "static_configs": [
        {"targets": ["127.0.0.1:1"], "labels": {"team": "a", "env": "prod", "lbl_zone": "z1"}},
        {"targets": ["127.0.0.1:2"], "labels": {"team": "b", "env": "staging"}},
        {"targets": ["127.0.0.1:3", "127.0.0.1:4"], "labels": {"team": "c", "env": "dev", "lbl_rack": "r9"}},
    ],
    "relabel_configs": [
        {"source_labels": ["env"], "regex": "prod|dev", "action": "keep"},
        {"source_labels": ["__address__"], "regex": ".*:3", "action": "drop"},
        {"source_labels": ["__address__"], "regex": r"127\.0\.0\.1:(\d+)", "target_label": "port",
         "replacement": "p-$1"},
        {"source_labels": ["team", "env"], "separator": "/", "regex": "(.*)/(.*)", "target_label": "combo",
         "replacement": "${2}_$1"},
        {"source_labels": ["__address__"], "regex": "0.1", "target_label": "unanchored", "replacement": "matched"},
        {"source_labels": ["__address__"], "modulus": 7, "target_label": "shard", "action": "hashmod"},
        {"regex": "lbl_(.+)", "replacement": "mapped_$1", "action": "labelmap"},
        {"regex": "lbl_.*", "action": "labeldrop"},
        {"source_labels": ["nothing"], "regex": "", "target_label": "team", "replacement": ""},
        {"source_labels": ["__param_module"], "target_label": "module"},
        {"source_labels": ["__address__"], "regex": "(.*):4", "target_label": "__address__",
         "replacement": "${1}:9"},
    ],
}


@needs_prometheus
async def test_relabeling_gives_the_labels_prometheus_gives(tmp_path) -> None:
    prometheus = prometheus_real.PrometheusServer(tmp_path)
    (prometheus.dir / "prom.yml").write_text(yaml.safe_dump({"scrape_configs": [RELABEL_JOB]}))
    await prometheus.start()
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 20
            while True:
                async with session.get(f"{prometheus.url}/api/v1/targets") as response:
                    body = await response.json()
                active = body["data"]["activeTargets"]
                if len(active) == 2:
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.2)
        theirs = sorted((t["scrapeUrl"], t["labels"]) for t in active)
    finally:
        prometheus.stop()
    scrape = decode(ScrapeConfig(), RELABEL_JOB)
    assert validate_tree(scrape) == []
    ours = sorted((t.url, dict(t.labels)) for t in build_targets(scrape, GlobalConfig(), static_groups(scrape)))
    assert ours == theirs
    assert {labels["port"] for _, labels in ours} == {"p-1", "p-4"}  # keep, drop and the rest did something


@needs_prometheus
async def test_values_through_the_exporter_into_prometheus_equal_the_targets_own(tmp_path, app) -> None:
    address, _ = app
    sink = OtlpSink()
    await sink.start()
    service = Service.from_files([str(scrape_real.config(tmp_path, sink, {"app": address}, exporter=True))])
    prometheus = None
    try:
        await service.start()
        await scrape_real.wait_for_scrape(sink, "app")
        exporter = service.graph.find(Kind.EXPORTER, "prometheus")
        prometheus = prometheus_real.PrometheusServer(tmp_path, scrape_target=exporter.address)
        await prometheus.start()
        expected = scrape_real.own_values(address)
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                result = await prometheus.query(session, '{job="app"}')
                # the exporter adds the OTLP scope as otel_scope_* labels, as the Collector's does
                got = {scrape_real._key(r["metric"]["__name__"], {k: v for k, v in r["metric"].items()
                                                                   if not k.startswith(("__", "otel_scope_"))}):
                       float(r["value"][1]) for r in result}
                if {k: got.get(k) for k in expected} == expected:
                    break
                missing = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
                assert time.monotonic() < deadline, f"Prometheus disagrees with the target: {missing}"
                await asyncio.sleep(0.25)
            [instance] = {r["metric"]["instance"] for r in result}
            assert instance == address
            up = await prometheus.query(session, 'up{job="app"}')
            assert [float(r["value"][1]) for r in up] == [1.0]
    finally:
        if prometheus is not None:
            prometheus.stop()
        await service.shutdown()
        await sink.stop()


@needs_prometheus
@scrape_real.needs_node_exporter
async def test_node_exporter_through_the_exporter_into_prometheus(tmp_path, node_exporter) -> None:
    """The node exporter's series that do not change between scrapes arrive in Prometheus with its own values."""
    sink = OtlpSink()
    await sink.start()
    service = Service.from_files([str(scrape_real.config(tmp_path, sink, {"node": node_exporter}, exporter=True))])
    prometheus = None
    try:
        await service.start()
        await scrape_real.wait_for_scrape(sink, "node")
        exporter = service.graph.find(Kind.EXPORTER, "prometheus")
        prometheus = prometheus_real.PrometheusServer(tmp_path, scrape_target=exporter.address)
        await prometheus.start()
        expected = {k: v for k, v in scrape_real.own_values(node_exporter).items()
                    if k[0] in ("node_memory_MemTotal_bytes", "node_filesystem_size_bytes")}
        assert expected
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                result = await prometheus.query(
                    session, '{job="node",__name__=~"node_memory_MemTotal_bytes|node_filesystem_size_bytes"}')
                got = {scrape_real._key(r["metric"]["__name__"], {k: v for k, v in r["metric"].items()
                                                                   if not k.startswith(("__", "otel_scope_"))}):
                       float(r["value"][1]) for r in result}
                if got == expected:
                    break
                assert time.monotonic() < deadline, f"Prometheus has {got}, the node exporter {expected}"
                await asyncio.sleep(0.25)
    finally:
        if prometheus is not None:
            prometheus.stop()
        await service.shutdown()
        await sink.stop()
