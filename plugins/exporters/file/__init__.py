"""Exporter ``file``: OTLP/JSON lines or length-prefixed binary OTLP into a file, with size-based rotation."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
