"""Receiver ``prometheus``: scrapes Prometheus and OpenMetrics endpoints, as the Collector's receiver does."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
