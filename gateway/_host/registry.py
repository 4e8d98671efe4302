"""Plugin discovery: load every ``otelgw.plugins`` entry point, collect factories, reject duplicate type names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from gateway import hookspecs
from gateway.component import Factory, Kind
from gateway.errors import PluginError

__all__ = ["Registry", "load_registry", "new_plugin_manager"]


@dataclass
class Registry:
    """Every known factory by kind and type name (aliases included), and which plugin provided it."""

    plugin_manager: pluggy.PluginManager
    factories: dict[Kind, dict[str, Factory]] = field(default_factory=lambda: {k: {} for k in Kind})
    providers: dict[tuple[Kind, str], str] = field(default_factory=dict)

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


def load_registry(extra_plugins: Iterable[Any] = (), *, entry_points: bool = True) -> Registry:
    """Load plugins from the ``otelgw.plugins`` entry points plus ``extra_plugins`` and collect their factories.

    ``extra_plugins`` lets tests and embedders register plugin modules or objects without installing them.
    """
    pm = new_plugin_manager()
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must say which one
            raise PluginError(f"loading plugins from entry points failed: {exc}") from exc
    for plugin in extra_plugins:
        pm.register(plugin)
    registry = Registry(pm)
    for impl in pm.hook.otelgw_component_factories.get_hookimpls():
        for factory in impl.function() or ():  # type: ignore[attr-defined]
            if not isinstance(factory, Factory):
                raise PluginError(f"plugin {impl.plugin_name!r} returned {factory!r}, not a gateway.Factory")
            registry.add(factory, impl.plugin_name)
    return registry
