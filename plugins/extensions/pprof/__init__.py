"""Extension ``pprof``: CPU profiles of the gateway in pprof's format at ``/debug/pprof/profile?seconds=N``."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
