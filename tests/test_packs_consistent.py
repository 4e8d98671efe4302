"""The shipped alert packs read only metrics the shipped KPI packs (or span_metrics) derive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SPAN_METRICS = {"traces.span.metrics.calls", "traces.span.metrics.duration"}


def walk(node: Any, key: str) -> list[Any]:
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                found.append(v)
            found.extend(walk(v, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(walk(item, key))
    return found


def derived_metrics() -> set[str]:
    names = set(SPAN_METRICS)
    for path in (CONFIGS / "kpi").glob("*.yaml"):
        for connector in (yaml.safe_load(path.read_text()).get("connectors") or {}).values():
            names.update(kpi["name"] for kpi in (connector or {}).get("kpis", []))
    return names


@pytest.mark.parametrize("pack", sorted((CONFIGS / "alerts").glob("*.yaml")), ids=lambda p: p.name)
def test_alert_pack_reads_derived_metrics(pack: Path):
    read = set(walk(yaml.safe_load(pack.read_text()), "metric"))
    assert read, "a pack with no rules"
    assert read <= derived_metrics(), f"not derived by any KPI pack: {sorted(read - derived_metrics())}"


@pytest.mark.parametrize("pack", sorted((CONFIGS / "alerts").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_alert_waits_at_least_a_minute(pack: Path):
    """A rule without ``for:`` (or a short one) pages on one bad evaluation; ``otelgw demo --speed`` shortens them
    for demonstrations instead of the packs shipping short ones."""
    from gateway.configtypes import parse_duration

    for processor in (yaml.safe_load(pack.read_text()).get("processors") or {}).values():
        for rule in processor.get("rules", []):
            assert parse_duration(rule.get("for", 0)) >= 60, f"{rule['alert']}: for: {rule.get('for')!r} (< 1m)"
