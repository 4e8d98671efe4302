"""Connector ``forward``: hands every batch of one pipeline to the pipelines that list it as a receiver."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
