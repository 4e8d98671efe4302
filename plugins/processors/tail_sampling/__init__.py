"""Processor ``tail_sampling``: keeps whole traces chosen by policies after their spans have arrived."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
