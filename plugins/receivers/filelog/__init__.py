"""Receiver ``filelog``: tails log files (rotation-safe, checkpointed) and parses them with stanza operators."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
