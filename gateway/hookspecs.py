"""The whole plugin contract of otelgw, in one file: the hooks below, and what ``gateway`` exports.

A plugin is any module or object with functions marked ``@hookimpl`` (``from gateway import hookimpl``), named
exactly as a hook below and taking some or all of its arguments by name. Built-in components and third-party
plugins are found the same way: through the ``otelgw.plugins`` entry-point group, e.g. in a plugin's
``pyproject.toml``::

    [project.entry-points."otelgw.plugins"]
    my_processor = "my_package.my_processor"

Start-up fails, naming the plugin (entry point, module, distribution) and the hook, when an entry point cannot
be imported, when a plugin implements a hook that is not defined here (``otelgw_component_factory``: pluggy's
``check_pending``, with the likely meant hook), when a function named like a hook is not marked ``@hookimpl``, or
when a hook takes an argument its spec does not give.

pluggy wires the program together at start-up only. Batches never pass through a hook: they flow through plain
``await next.consume_traces(batch)`` calls between component objects (``gateway.component``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from gateway.commands import CliCommand
    from gateway.component import Factory
    from gateway.host import Host

PROJECT_NAME = "otelgw"
ENTRY_POINT_GROUP = "otelgw.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def otelgw_component_factories() -> Sequence[Factory]:
    """Return the component factories (``gateway.Factory``) this plugin provides; may be empty.

    Called once per process, when plugins are loaded: before any configuration is read, for every ``otelgw``
    command. Every factory's ``type`` (and alias) must be unique per kind across all plugins; a clash is a
    start-up error naming both plugins. Anything but a ``Factory`` in the result is a start-up error too.
    """
    return ()


@hookspec
def otelgw_config_loaded(config: Mapping[str, Any]) -> None:
    """Inspect the merged, env-expanded configuration mapping before it is decoded and components are built.

    Called each time a configuration is loaded: ``otelgw run`` and ``validate``, ``print-config``, and every
    reload (SIGHUP, ``POST /-/reload``, ``--watch-config``). Returns nothing. Read-only: for plugins that log,
    audit or reject a configuration; raising ``ConfigError`` rejects it with those messages (secrets redacted),
    so ``run`` does not start, ``validate`` fails and a reload keeps the running pipelines.
    """


@hookspec
def otelgw_service_started(host: Host) -> None:
    """Called once per ``Service.start``, after the extensions and every pipeline have started and the gateway
    reports itself ready; not called again on reload. ``host`` gives the extensions (``host.extension``), the
    admin endpoint and component status. Returns nothing; an exception propagates out of ``start``."""


@hookspec
def otelgw_service_stopping(host: Host) -> None:
    """Called once when shutdown begins (SIGTERM, SIGINT, ``Service.shutdown``): the gateway already reports
    itself not ready, and every component still runs; receivers stop right after. Returns nothing. Keep it
    short: it runs inside the shutdown grace period."""


@hookspec
def otelgw_cli_commands() -> Sequence[CliCommand]:
    """Return the ``otelgw`` subcommands this plugin adds (``gateway.CliCommand``: name, help, arguments, run).

    Called once when the ``otelgw`` command starts, before its command line is parsed, so ``otelgw --help`` lists
    them; never by a ``Service`` embedded in another program. ``otelgw NAME ...`` then calls the command's
    ``run(args)`` and exits with what it returns. A name taken by a built-in command or by another plugin is a
    start-up error naming the plugin. The alerts processor adds ``otelgw alerts`` and ``otelgw rules`` this way.
    """
    return ()
