"""Extension ``zpages``: the Collector's debug pages (servicez, pipelinez, extensionz, featurez) as HTML."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
