"""Receiver ``otlp``: OTLP over gRPC (4317) and HTTP protobuf/JSON (4318), for traces, metrics and logs."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
