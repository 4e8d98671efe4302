"""Exporter ``otlp_http`` (alias ``otlphttp``): sends traces, metrics and logs to an OTLP/HTTP server."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
