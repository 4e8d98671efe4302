"""Receiver ``hostmetrics``: CPU, memory, load, disks, file systems, network, paging and processes via psutil."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
