"""Processor ``transform``: OTTL statements that change spans, span events, metrics, data points and logs."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
