"""Processor ``redaction``: removes and masks personal data and secrets before they leave the gateway."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
