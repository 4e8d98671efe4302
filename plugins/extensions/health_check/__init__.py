"""Extension ``health_check``: HTTP liveness and readiness endpoints backed by every component's status."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
