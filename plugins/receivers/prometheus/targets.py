"""Targets of one scrape config: ``static_configs`` and ``file_sd_configs`` groups, through ``relabel_configs``.

Each discovered address starts with Prometheus' hidden labels (``__address__``, ``__scheme__``,
``__metrics_path__``, ``__scrape_interval__``, ``__scrape_timeout__``, ``__param_<name>``, and ``__meta_filepath``
for file_sd), the group's labels and ``job``. After relabeling, ``instance`` defaults to ``__address__``, the URL
is built from the hidden labels, and labels starting with ``__`` are dropped.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml

from gateway import parse_duration

from .config import GlobalConfig, ScrapeConfig
from .relabel import relabel

__all__ = ["Group", "Target", "build_targets", "file_groups", "static_groups"]


@dataclass(frozen=True)
class Group:
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    #: Labels after relabeling, hidden ones removed: job, instance and any others.
    labels: tuple[tuple[str, str], ...]
    interval: float
    timeout: float

    @property
    def job(self) -> str:
        return dict(self.labels).get("job", "")

    @property
    def instance(self) -> str:
        return dict(self.labels).get("instance", "")


def _seconds(value: float) -> str:
    return f"{value:g}s" if value == int(value) else f"{round(value * 1000)}ms"


def static_groups(scrape: ScrapeConfig) -> list[Group]:
    return [Group(tuple(g.targets), tuple(sorted(g.labels.items()))) for g in scrape.static_configs]


def _expand(pattern: str) -> Iterator[str]:
    # As Prometheus: only the last path element may be a glob.
    yield from sorted(glob.glob(pattern)) if any(c in os.path.basename(pattern) for c in "*?[") else [pattern]


def file_groups(scrape: ScrapeConfig) -> tuple[list[Group], list[str]]:
    """Groups from every file_sd file, and one error message per file that could not be read."""
    groups: list[Group] = []
    errors: list[str] = []
    for sd in scrape.file_sd_configs:
        for pattern in sd.files:
            for path in _expand(pattern):
                try:
                    text = Path(path).read_text()
                    data: Any = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
                    groups.extend(_parse_file(data, path))
                except (OSError, ValueError, yaml.YAMLError) as exc:
                    errors.append(f"{path}: {exc}")
    return groups, errors


def _parse_file(data: Any, path: str) -> list[Group]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError("expected a list of {targets, labels} groups")
    groups = []
    for entry in data:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("targets", []), list):
            raise ValueError("every group needs a list of targets")
        labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
        labels["__meta_filepath"] = path
        groups.append(Group(tuple(str(t) for t in entry.get("targets", [])), tuple(sorted(labels.items()))))
    return groups


def build_targets(scrape: ScrapeConfig, defaults: GlobalConfig, groups: list[Group]) -> list[Target]:
    interval, timeout = scrape.interval(defaults), scrape.timeout(defaults)
    targets: dict[tuple[str, tuple[tuple[str, str], ...]], Target] = {}
    for group in groups:
        for address in group.targets:
            labels = {"__address__": address, "__scheme__": scrape.scheme, "__metrics_path__": scrape.metrics_path,
                      "__scrape_interval__": _seconds(interval), "__scrape_timeout__": _seconds(timeout),
                      "job": scrape.job_name}
            labels.update((f"__param_{k}", v[0]) for k, v in scrape.params.items() if v)
            labels.update(group.labels)
            result = relabel(labels, scrape.relabel_configs)
            if result is None or not result.get("__address__"):
                continue
            result.setdefault("instance", result["__address__"])
            params = {k: list(v) for k, v in scrape.params.items()}
            params.update((k[len("__param_"):], [v]) for k, v in result.items() if k.startswith("__param_"))
            query = f"?{urlencode(params, doseq=True)}" if params else ""
            url = f"{result['__scheme__']}://{result['__address__']}{result['__metrics_path__']}{query}"
            try:
                target_interval = parse_duration(result["__scrape_interval__"]) or interval
                target_timeout = min(parse_duration(result["__scrape_timeout__"]) or timeout, target_interval)
            except ValueError:
                target_interval, target_timeout = interval, timeout
            final = tuple(sorted((k, v) for k, v in result.items() if not k.startswith("__") and v))
            targets[(url, final)] = Target(url, result["__scheme__"], final, target_interval, target_timeout)
    return list(targets.values())
