"""Exporter ``jaeger``: sends traces to a Jaeger collector over api_v2 gRPC (PostSpans) or native OTLP/gRPC."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
