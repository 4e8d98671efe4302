"""Extension ``file_storage``: a directory for persistent sending queues (``sending_queue.storage``)."""

from __future__ import annotations

from gateway import hookimpl

from .factory import factory


@hookimpl
def otelgw_component_factories():  # type: ignore[no-untyped-def]
    return [factory]
