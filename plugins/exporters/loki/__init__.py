"""Exporter ``loki``: pushes log records to Grafana Loki's push API (protobuf + snappy, or JSON)."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
