"""Exporter ``prometheus``: serves metrics for Prometheus to scrape (text 0.0.4 or OpenMetrics)."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
