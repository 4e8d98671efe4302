"""Extension ``bearertokenauth``: receivers with ``auth: {authenticator: bearertokenauth}`` require a token."""

from __future__ import annotations

from gateway import hookimpl

from .extension import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
