"""Exporter ``prometheus_remote_write`` (alias ``prometheusremotewrite``): remote write 1.0."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
