"""Processor ``attributes``: the Collector's attribute actions on spans, logs and metric data points."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
