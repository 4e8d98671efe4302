"""filelog receiver metrics, created once per registry and shared by its instances."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["FilelogMetrics", "filelog_metrics"]


@dataclass(frozen=True)
class FilelogMetrics:
    problems: Counter
    operator_errors: Counter
    files: Gauge
    bytes_read: Counter


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, FilelogMetrics] = weakref.WeakKeyDictionary()


def filelog_metrics(registry: CollectorRegistry) -> FilelogMetrics:
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = FilelogMetrics(
            problems=Counter("otelgw_receiver_filelog_problems",
                             "Problems with files and their contents, by reason (open, read, truncated, deleted, "
                             "invalid_encoding, entry_cut, delivery).", ["receiver", "reason"], registry=registry),
            operator_errors=Counter("otelgw_receiver_filelog_operator_errors",
                                    "Entries an operator failed on (kept or dropped per on_error).",
                                    ["receiver", "operator"], registry=registry),
            files=Gauge("otelgw_receiver_filelog_files", "Files being read.", ["receiver"], registry=registry),
            bytes_read=Counter("otelgw_receiver_filelog_read_bytes", "Bytes read from files.", ["receiver"],
                               registry=registry),
        )
        _BY_REGISTRY[registry] = metrics
    return metrics
