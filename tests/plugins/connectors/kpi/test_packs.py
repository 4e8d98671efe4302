"""The shipped KPI packs (configs/kpi/*.yaml): they load, they document what they read, and a known workload
gives the values bench/kpi_workload.py states (tests/test_prometheus_real.py checks the same through Prometheus).
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway._host.service import load_config
from gateway.configtypes import decode, validate_tree
from gateway.prometheus import Translator
from plugins.connectors.kpi.engine import KpiEngine
from plugins.connectors.kpi.factory import factory
from plugins.connectors.span_metrics.aggregator import SpanAggregator
from plugins.connectors.span_metrics.factory import factory as span_metrics_factory

ROOT = Path(__file__).resolve().parents[4]
KPI_DIR = ROOT / "configs/kpi"
PACKS = ("callcenter", "llm_agent", "crm")
PSEUDO_FIELDS = {"span.name", "span.kind", "status.code", "event.name", "severity.text", "severity.number"}


def _load_workload() -> Any:
    spec = importlib.util.spec_from_file_location("kpi_workload", ROOT / "bench/kpi_workload.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kpi_workload"] = module
    spec.loader.exec_module(module)
    return module


def pack_config(pack: str) -> Any:
    raw = yaml.safe_load((KPI_DIR / f"{pack}.yaml").read_text())["connectors"][f"kpi/{pack}"]
    config = decode(factory.create_default_config(), raw)
    assert validate_tree(config) == []
    return config


def header_section(pack: str, title: str) -> list[str]:
    """The first word of each entry of one commented section of a pack's header."""
    words, inside = [], False
    for line in (KPI_DIR / f"{pack}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text.startswith(title):
            inside = True
        elif inside and not text:
            break
        elif inside and len(line) - len(line[1:].lstrip()) == 4:  # "#   entry"; deeper lines continue one
            words.append(text.split()[0])
    return words


def test_gateway_and_all_packs_make_one_valid_configuration():
    config = load_config([str(KPI_DIR / f"{name}.yaml") for name in ("gateway", *PACKS)], load_registry())
    assert {str(p) for p in config.pipelines} >= {"traces", "logs", "metrics/kpi_llm_agent"}


@pytest.mark.parametrize("pack", PACKS)
def test_each_pack_loads_on_its_own_over_the_gateway_config(pack):
    load_config([str(KPI_DIR / "gateway.yaml"), str(KPI_DIR / f"{pack}.yaml")], load_registry())


@pytest.mark.parametrize("pack", PACKS)
def test_each_pack_documents_exactly_the_attributes_it_reads(pack):
    engine = KpiEngine(pack_config(pack))
    read = set().union(*(kpi.attribute_keys() for kpi in engine.kpis)) - PSEUDO_FIELDS
    assert set(header_section(pack, "Attributes read")) == read


def test_the_workload_gives_every_documented_value():
    workload = _load_workload().pack_workload(time.time_ns())
    translator = Translator()
    points = []
    for pack in PACKS:
        engine = KpiEngine(pack_config(pack))
        for request in workload.traces:
            engine.add_traces(request)
        for request in workload.logs:
            engine.add_logs(request)
        points += translator.translate(engine.build())
    spans = SpanAggregator(span_metrics_factory.create_default_config())
    for request in workload.traces:
        spans.add(request)
    points += translator.translate(spans.build())
    samples = [(s.name, {**dict(p.labels), **dict([s.extra] if s.extra else [])}, s.value)
               for p in points for s in p.samples()]
    wrong = []
    for expected in workload.expected:
        found = [value for name, labels, value in samples
                 if name == expected.name and all(labels.get(k) == v for k, v in expected.labels.items())]
        if len(found) != 1 or not math.isclose(found[0], expected.value, rel_tol=1e-9, abs_tol=1e-12):
            wrong.append(f"{expected.promql}: {found}, expected {expected.value}")
    assert not wrong, "\n".join(wrong)
    assert len(workload.expected) >= 70
    names = {p.name for p in points}
    for pack in PACKS:  # every metric a pack's header promises exists, under that Prometheus name
        for documented in header_section(pack, "Metrics (Prometheus names)"):
            family = re.split(r"_\{|\{", documented)[0]
            assert family in names, f"{pack}: {family} is documented but not produced"


def _samples(engine: KpiEngine, now_ns: int) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted((s.name, tuple(sorted(p.labels)), s.value)
                  for p in Translator().translate(engine.build(now_ns)) for s in p.samples())


@pytest.mark.parametrize("pack", PACKS)
def test_the_part_a_worker_hands_to_the_kpi_owner_gives_the_same_kpis_as_everything(pack):
    """With --workers N only worker 0 keeps the KPIs; the others send it what ``offered_traces``/``offered_logs``
    keep. Fed only that part, an engine gives exactly the KPIs of the whole workload, and the part is smaller."""
    now = time.time_ns()
    workload = _load_workload().pack_workload(now)
    whole, owner, sender = (KpiEngine(pack_config(pack)) for _ in range(3))
    sent = total = 0
    for requests, add, offered in ((workload.traces, "add_traces", "offered_traces"),
                                   (workload.logs, "add_logs", "offered_logs")):
        for request in requests:
            getattr(whole, add)(request)
            part = getattr(sender, offered)(request)
            total += request.ByteSize()
            if part is not None:
                sent += part.ByteSize()
                getattr(owner, add)(part)
    assert _samples(owner, now) == _samples(whole, now) != []
    assert 0 < sent < total


def test_the_part_keeps_resources_scopes_and_only_matching_items():
    from gateway.testing import make_traces

    engine = KpiEngine(pack_config("callcenter"))
    noise = make_traces(20, service="shop")
    assert engine.offered_traces(noise) is None  # no callcenter span name: nothing travels
    workload = _load_workload().pack_workload(time.time_ns())
    request = next(r for r in workload.traces if engine.offered_traces(r) is not None)
    mixed = type(request)()
    mixed.CopyFrom(request)
    mixed.resource_spans.extend(noise.resource_spans)
    part = engine.offered_traces(mixed)
    assert part is not None and part is not mixed
    kept = {span.SerializeToString() for rs in part.resource_spans for ss in rs.scope_spans for span in ss.spans}
    assert kept and kept <= {span.SerializeToString() for rs in request.resource_spans
                             for ss in rs.scope_spans for span in ss.spans}
    for rs in part.resource_spans:  # each under its own resource and scope
        source = next(r for r in request.resource_spans if r.resource == rs.resource)
        assert [ss.scope for ss in rs.scope_spans] == [ss.scope for ss in source.scope_spans][:len(rs.scope_spans)]
