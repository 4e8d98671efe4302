"""Exporter ``load_balancing`` (alias ``loadbalancing``): sends all spans of a trace to the same backend."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
