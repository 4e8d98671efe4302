"""Extension ``headers_setter``: exporters with ``auth: {authenticator: headers_setter}`` send headers taken from
the request's client metadata (a tenant id received with the data) or fixed values."""

from __future__ import annotations

from gateway import hookimpl

from .extension import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
