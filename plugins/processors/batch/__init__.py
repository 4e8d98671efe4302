"""Processor ``batch``: groups items into fewer, larger requests by size and by time, as the Collector's."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
