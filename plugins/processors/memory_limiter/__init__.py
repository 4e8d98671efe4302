"""Processor ``memory_limiter``: refuses data with retryable errors while memory is above its soft limit."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
