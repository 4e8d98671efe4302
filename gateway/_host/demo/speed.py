"""``otelgw demo --speed N``: the shipped packs with every time window N times shorter.

The packs ship the durations an operator needs (alerts wait ``for: 5m`` before they page, ratios cover 15
minutes). A demonstration, or a test in CI, cannot wait that long, so the demo runs on copies in which every
duration that paces the packs (rule ``for`` and ``window``, evaluation and flush intervals, SLO windows) is
divided by N. The shipped files are never changed; the copies go to the demo's temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.configtypes import parse_duration

__all__ = ["PACED_KEYS", "scaled_copy"]

#: Keys whose values are durations that pace the KPI and alert packs.
PACED_KEYS = frozenset({"for", "window", "evaluation_interval", "metrics_flush_interval", "metrics_expiration",
                        "metric_expiration", "long", "short", "period", "repeat_interval", "decision_wait"})


def _scaled(node: Any, speed: float, keys: frozenset[str]) -> Any:
    if isinstance(node, dict):
        return {k: (_seconds(v, speed) if k in keys and not isinstance(v, dict | list) else _scaled(v, speed, keys))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_scaled(item, speed, keys) for item in node]
    return node


def _seconds(value: Any, speed: float) -> Any:
    if isinstance(value, str) and value.startswith("${"):
        return value  # an environment reference: the user's own value, left alone
    # with its unit: a bare number is read as the Collector reads durations, in nanoseconds
    return f"{round(parse_duration(value) / speed, 3)}s"


def scaled_copy(source: Path, target_dir: Path, speed: float, keys: frozenset[str] = PACED_KEYS) -> Path:
    """A copy of ``source`` in ``target_dir`` (under its parent directory's name, so ``kpi/crm.yaml`` and
    ``alerts/crm.yaml`` stay apart) with its pacing durations (those under ``keys``) divided by ``speed``."""
    target = target_dir / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    # safe_load resolves the packs' anchors and merge keys; the copy holds the plain result
    target.write_text(yaml.safe_dump(_scaled(yaml.safe_load(source.read_text()), speed, keys), sort_keys=False))
    return target
