"""The whole plugin contract of otelgw, in one file.

A plugin is any module or object with functions marked ``@hookimpl`` (``gateway.hookimpl``). Built-in components
and third-party plugins are found the same way: through the ``otelgw.plugins`` entry-point group, e.g. in a
plugin's ``pyproject.toml``::

    [project.entry-points."otelgw.plugins"]
    my_processor = "my_package.my_processor"

pluggy wires the program together at start-up only. Batches never pass through a hook: they flow through plain
``await next.consume_traces(batch)`` calls between component objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from gateway.component import Factory
    from gateway.host import Host

PROJECT_NAME = "otelgw"
ENTRY_POINT_GROUP = "otelgw.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def otelgw_component_factories() -> Sequence[Factory]:
    """Return the component factories this plugin provides.

    Called once at start-up. Every factory's ``type`` (and alias) must be unique per kind across all plugins;
    a clash is a start-up error naming both plugins.
    """
    return ()


@hookspec
def otelgw_config_loaded(config: Mapping[str, Any]) -> None:
    """Inspect the merged, env-expanded configuration mapping before components are built.

    Read-only: for plugins that want to log, audit or reject a configuration (raise ``ConfigError``).
    """


@hookspec
def otelgw_service_started(host: Host) -> None:
    """Called once every pipeline has started; ``host`` gives access to extensions and component status."""


@hookspec
def otelgw_service_stopping(host: Host) -> None:
    """Called when shutdown begins, before receivers stop."""
