"""Plugin discovery: load every ``otelgw.plugins`` entry point, collect factories, reject duplicate type names.

A plugin that cannot be loaded, or that implements a hook the contract does not define (a misspelling such as
``otelgw_component_factory``), stops start-up with an error naming the plugin, its module and distribution, and
the hook: silently ignoring it would leave a component missing with no hint why.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.commands import CliCommand
from gateway.component import Factory, Kind
from gateway.errors import PluginError

__all__ = ["Registry", "load_registry", "new_plugin_manager"]


@dataclass
class Registry:
    """Every known factory by kind and type name (aliases included), and which plugin provided it."""

    plugin_manager: pluggy.PluginManager
    factories: dict[Kind, dict[str, Factory]] = field(default_factory=lambda: {k: {} for k in Kind})
    providers: dict[tuple[Kind, str], str] = field(default_factory=dict)
    #: ``otelgw`` subcommands from plugins' ``otelgw_cli_commands``, by name.
    commands: dict[str, CliCommand] = field(default_factory=dict)

    def get(self, kind: Kind, type_name: str) -> Factory | None:
        return self.factories[kind].get(type_name)

    def types(self, kind: Kind) -> list[str]:
        return sorted(self.factories[kind])

    def unique_factories(self) -> list[tuple[Factory, str]]:
        """Each factory once (not once per alias), with the name of the plugin that provided it."""
        seen: dict[int, tuple[Factory, str]] = {}
        for kind, by_type in self.factories.items():
            for type_name, factory in by_type.items():
                if type_name == factory.type:
                    seen[id(factory)] = (factory, self.providers[(kind, type_name)])
        return sorted(seen.values(), key=lambda fp: (list(Kind).index(fp[0].kind), fp[0].type))

    def add(self, factory: Factory, plugin_name: str) -> None:
        for type_name in (factory.type, *factory.aliases):
            key = (factory.kind, type_name)
            if key in self.providers:
                raise PluginError(
                    f"{factory.kind.value} type {type_name!r} is registered twice: "
                    f"by plugin {self.providers[key]!r} and by plugin {plugin_name!r}"
                )
            self.providers[key] = plugin_name
            self.factories[factory.kind][type_name] = factory


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _describe(name: str | None, plugin: object, origins: dict[str, str]) -> str:
    """``plugin 'name' (module m, distribution d 1.0)``: enough to find the code at fault."""
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    where = f"module {module}" + (f", distribution {origins[name]}" if name in origins else "")
    return f"plugin {name or module!r} ({where})"


def _load_entry_points(pm: pluggy.PluginManager, origins: dict[str, str]) -> None:
    """``pm.load_setuptools_entrypoints`` one entry point at a time, so a failure names the one that failed."""
    for dist in importlib.metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != hookspecs.ENTRY_POINT_GROUP or pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
                continue
            origin = f"{dist.metadata['Name']} {dist.version}"
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken third-party plugin must say which one
                raise PluginError(f"plugin entry point {ep.name} = {ep.value!r} (distribution {origin}) "
                                  f"failed to import: {type(exc).__name__}: {exc}") from exc
            origins[ep.name] = origin
            _register(pm, plugin, origins, name=ep.name)


def _register(pm: pluggy.PluginManager, plugin: object, origins: dict[str, str], name: str | None = None) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a hook with the wrong arguments
        raise PluginError(f"{_describe(name, plugin, origins)}: {exc}") from exc
    hooks = {spec for spec in vars(pm.hook) if not spec.startswith("_")}
    for attr in dir(plugin):  # a hook function someone forgot to mark is as silent as a misspelled one
        if (attr.startswith(hookspecs.PROJECT_NAME + "_") and callable(getattr(plugin, attr, None))
                and pm.parse_hookimpl_opts(plugin, attr) is None and attr in hooks):
            raise PluginError(f"{_describe(pm.get_name(plugin), plugin, origins)}: {attr} is not marked @hookimpl "
                              "(from gateway import hookimpl), so otelgw would never call it")


def _check_hooks(pm: pluggy.PluginManager, origins: dict[str, str]) -> None:
    """pluggy's ``check_pending``, with the plugin, its distribution and the hook meant named in the error."""
    known = sorted(name for name, caller in vars(pm.hook).items() if not name.startswith("_") and caller.has_spec())
    errors = []
    for name, caller in sorted(vars(pm.hook).items()):
        if name.startswith("_") or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"the hooks are {', '.join(known)}"
            plugin = _describe(impl.plugin_name, impl.plugin, origins)
            errors.append(f"{plugin} implements unknown hook {name!r}: {hint}")
    if errors:
        raise PluginError("; ".join(errors))
    pm.check_pending()  # anything the loop above missed still fails


def load_registry(extra_plugins: Iterable[Any] = (), *, entry_points: bool = True) -> Registry:
    """Load plugins from the ``otelgw.plugins`` entry points plus ``extra_plugins`` and collect their factories.

    ``extra_plugins`` lets tests and embedders register plugin modules or objects without installing them.
    Raises ``PluginError`` naming the plugin when one cannot be imported or implements an unknown hook.
    """
    pm = new_plugin_manager()
    origins: dict[str, str] = {}  # plugin name → "distribution version", for errors
    if entry_points:
        _load_entry_points(pm, origins)
    for plugin in extra_plugins:
        _register(pm, plugin, origins)
    _check_hooks(pm, origins)
    registry = Registry(pm)
    for impl in pm.hook.otelgw_component_factories.get_hookimpls():
        for factory in impl.function() or ():  # type: ignore[attr-defined]
            if not isinstance(factory, Factory):
                raise PluginError(f"{_describe(impl.plugin_name, impl.plugin, origins)} returned {factory!r}, "
                                  "not a gateway.Factory")
            registry.add(factory, impl.plugin_name)
    providers: dict[str, str] = {}
    for impl in pm.hook.otelgw_cli_commands.get_hookimpls():
        for command in impl.function() or ():  # type: ignore[attr-defined]
            plugin = _describe(impl.plugin_name, impl.plugin, origins)
            if not isinstance(command, CliCommand):
                raise PluginError(f"{plugin} returned {command!r}, not a gateway.CliCommand")
            if command.name in registry.commands:
                raise PluginError(f"command {command.name!r} is added twice: by {providers[command.name]} and "
                                  f"by {plugin}")
            providers[command.name] = plugin
            registry.commands[command.name] = command
    return registry
