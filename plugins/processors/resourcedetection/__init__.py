"""Processor ``resourcedetection``: adds host, OS, Docker and Kubernetes node identity to every resource."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
