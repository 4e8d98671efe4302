"""Connector ``kpi``: business KPIs (counters, histograms, gauges, windowed ratios) from spans and logs."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
