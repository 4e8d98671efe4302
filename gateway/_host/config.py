"""The gateway configuration: typed component configs plus the ``service`` section, checked as a whole.

Loading runs in stages and never stops at the first error: every section's keys and component types, then each
component's config (defaults overlaid with YAML), then every ``validate()``, then pipeline references. All errors
come back together in one ``ConfigError``, each with its key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway._host.admin import AdminConfig
from gateway._host.registry import Registry
from gateway._host.telemetryconfig import TelemetryConfig
from gateway.component import ComponentID, Factory, Kind, Signal
from gateway.configtypes import decode_and_validate
from gateway.errors import ConfigError

__all__ = ["ComponentConfig", "GatewayConfig", "PipelineConfig", "PipelineID", "TelemetryConfig", "build_config"]

TOP_LEVEL_KEYS = ("receivers", "processors", "exporters", "connectors", "extensions", "service")
SERVICE_KEYS = ("extensions", "pipelines", "telemetry", "admin")
PIPELINE_KEYS = ("receivers", "processors", "exporters")


@dataclass(frozen=True, order=True)
class PipelineID:
    """``traces``, ``metrics``, ``logs`` or ``<signal>/<name>``."""

    signal: Signal
    name: str = ""

    def __str__(self) -> str:
        return f"{self.signal.value}/{self.name}" if self.name else self.signal.value


@dataclass(frozen=True)
class ComponentConfig:
    id: ComponentID
    kind: Kind
    factory: Factory
    config: Any


@dataclass(frozen=True)
class PipelineConfig:
    id: PipelineID
    receivers: list[ComponentID]
    processors: list[ComponentID]
    exporters: list[ComponentID]


@dataclass(frozen=True)
class GatewayConfig:
    components: dict[tuple[Kind, ComponentID], ComponentConfig]
    pipelines: dict[PipelineID, PipelineConfig]
    extensions: list[ComponentID]
    telemetry: TelemetryConfig
    raw: Mapping[str, Any]
    admin: AdminConfig = field(default_factory=AdminConfig)
    #: What loads but deserves a word (a deprecated name, a unit the Collector assumes), with key paths.
    warnings: tuple[str, ...] = ()

    def get(self, kind: Kind, cid: ComponentID) -> ComponentConfig:
        return self.components[(kind, cid)]


#: Component types the Collector removed that otelgw still reads as their replacement, with a warning:
#: (kind, old type) -> (new type, how the old keys map onto the new config).
_DEPRECATED_TYPES: dict[tuple[Kind, str], tuple[str, Any]] = {}


def _logging_as_debug(value: Any) -> Any:
    """The logging exporter's ``loglevel`` becomes the debug exporter's ``verbosity``."""
    if not isinstance(value, Mapping) or "loglevel" not in value:
        return value
    rest = {k: v for k, v in value.items() if k != "loglevel"}
    level = str(value["loglevel"]).lower()
    rest.setdefault("verbosity", {"debug": "detailed", "info": "normal"}.get(level, "basic"))
    return rest


_DEPRECATED_TYPES[(Kind.EXPORTER, "logging")] = ("debug", _logging_as_debug)


def _build_components(raw: Mapping[str, Any], registry: Registry, errors: list[str],
                      warnings: list[str]) -> dict:
    components: dict[tuple[Kind, ComponentID], ComponentConfig] = {}
    for kind in (Kind.RECEIVER, Kind.PROCESSOR, Kind.EXPORTER, Kind.CONNECTOR, Kind.EXTENSION):
        section = raw.get(kind.section) or {}
        if not isinstance(section, Mapping):
            errors.append(f"{kind.section}: expected a mapping of component ids, got {type(section).__name__}")
            continue
        for key, value in section.items():
            path = f"{kind.section}::{key}"
            try:
                cid = ComponentID.parse(key)
            except ValueError as exc:
                errors.append(f"{path}: {exc}")
                continue
            factory = registry.get(kind, cid.type)
            replacement = _DEPRECATED_TYPES.get((kind, cid.type))
            if factory is None and replacement is not None and registry.get(kind, replacement[0]) is not None:
                factory = registry.get(kind, replacement[0])
                value = replacement[1](value)
                warnings.append(f"{path}: the {cid.type} {kind.value} was removed from the Collector; otelgw runs it "
                                f"as the {replacement[0]} {kind.value} (rename it to {replacement[0]})")
            if factory is None:
                valid = ", ".join(registry.types(kind)) or "(none registered)"
                errors.append(f"{path}: unknown {kind.value} type {cid.type!r}; valid types are: {valid}")
                continue
            if value is not None and not isinstance(value, Mapping):
                errors.append(f"{path}: expected a mapping of settings, got {type(value).__name__} {value!r}")
                continue
            found: list[str] = []
            config, problems = decode_and_validate(factory.create_default_config(), value, found)
            warnings.extend(f"{path}::{message}" for message in found)
            errors.extend(f"{path}::{message}" for message in problems)
            # Kept even with errors (its bad fields hold defaults), so the pipeline checks can still use it.
            components[(kind, cid)] = ComponentConfig(cid, kind, factory, config)
    return components


def _parse_ids(value: Any, path: str, errors: list[str]) -> list[ComponentID]:
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"{path}: expected a list of component ids, got {type(value).__name__}")
        return []
    ids = []
    for i, item in enumerate(value):
        try:
            ids.append(ComponentID.parse(item))
        except ValueError as exc:
            errors.append(f"{path}::{i}: {exc}")
    return ids


def _build_pipelines(service: Mapping[str, Any], components: dict, raw: Mapping[str, Any], errors: list[str]) -> dict:
    pipelines: dict[PipelineID, PipelineConfig] = {}
    section = service.get("pipelines")
    if not section:
        errors.append("service::pipelines: at least one pipeline is required")
        return pipelines
    if not isinstance(section, Mapping):
        errors.append(f"service::pipelines: expected a mapping, got {type(section).__name__}")
        return pipelines
    for key, body in section.items():
        path = f"service::pipelines::{key}"
        signal_name, _, name = str(key).partition("/")
        try:
            pid = PipelineID(Signal(signal_name), name)
        except ValueError:
            errors.append(f"{path}: unknown signal {signal_name!r}; valid signals are: logs, metrics, traces")
            continue
        if not isinstance(body, Mapping):
            errors.append(f"{path}: expected a mapping with receivers, processors and exporters")
            continue
        for unknown in set(body) - set(PIPELINE_KEYS):
            errors.append(f"{path}::{unknown}: unknown key; valid keys are: {', '.join(PIPELINE_KEYS)}")
        lists = {k: _parse_ids(body.get(k), f"{path}::{k}", errors) for k in PIPELINE_KEYS}
        pipelines[pid] = PipelineConfig(pid, lists["receivers"], lists["processors"], lists["exporters"])
    return pipelines


def _signal_errors(component: ComponentConfig, pid: PipelineID) -> list[str]:
    """What the component's ``validate_signal(signal)`` says of its use in pipeline ``pid``: a setting valid in
    itself that cannot work for this signal (load_balancing's ``routing_key: metric`` in a traces pipeline).
    The Collector finds these when it creates the component; here ``validate`` finds them."""
    check = getattr(component.config, "validate_signal", None)
    if not callable(check):
        return []
    try:
        check(pid.signal)
    except ConfigError as exc:
        return [f"{m} (in pipeline service::pipelines::{pid})"
                for m in exc.prefixed(f"{component.kind.section}::{component.id}").messages]
    return []


def _check_references(pipelines: dict, components: dict, raw: Mapping[str, Any], errors: list[str],
                      warnings: list[str]) -> None:
    def declared(kind: Kind, cid: ComponentID) -> bool:
        section = raw.get(kind.section)
        return isinstance(section, Mapping) and str(cid) in section

    connector_uses: dict[ComponentID, dict[str, set[Signal]]] = {}
    for pid, pipeline in pipelines.items():
        path = f"service::pipelines::{pid}"
        if not pipeline.receivers:
            errors.append(f"{path}: must have at least one receiver")
        if not pipeline.exporters:
            errors.append(f"{path}: must have at least one exporter")
        roles = (("receivers", Kind.RECEIVER), ("processors", Kind.PROCESSOR), ("exporters", Kind.EXPORTER))
        for role, kind in roles:
            ids = getattr(pipeline, role)
            if kind is Kind.PROCESSOR and len(set(ids)) != len(ids):
                errors.append(f"{path}::processors: a processor may appear only once in a pipeline")
            for cid in ids:
                if kind is not Kind.PROCESSOR and declared(Kind.CONNECTOR, cid):
                    use = connector_uses.setdefault(cid, {"receivers": set(), "exporters": set()})
                    use[role].add(pid.signal)
                    continue
                if not declared(kind, cid):
                    section = raw.get(kind.section)
                    configured = sorted(str(c) for c in section) if isinstance(section, Mapping) else []
                    hint = f"; configured {kind.section}: {', '.join(configured)}" if configured else ""
                    errors.append(
                        f"{path}::{role}: references {kind.value} {str(cid)!r}, which is not configured{hint}")
                    continue
                component = components.get((kind, cid))
                if component is not None and component.factory.create_fn(pid.signal) is None:
                    errors.append(
                        f"{path}::{role}: {kind.value} {str(cid)!r} does not support {pid.signal.value}; "
                        f"it supports: {', '.join(component.factory.signals) or 'nothing'}"
                    )
                elif component is not None:
                    errors.extend(_signal_errors(component, pid))
    for (kind, cid), component in components.items():
        if kind is not Kind.CONNECTOR:
            continue
        path = f"connectors::{cid}"
        if cid not in connector_uses:  # the Collector builds only what pipelines use
            warnings.append(f"{path}: not used in any pipeline, so it is not started")
            continue
        use = connector_uses[cid]
        if not use["receivers"] or not use["exporters"]:
            errors.append(f"{path}: a connector must be used as an exporter in one pipeline and a receiver in another")
            continue
        supported = set(component.factory.connectors)
        if not any((i, o) in supported for i in use["exporters"] for o in use["receivers"]):
            supports = ", ".join(component.factory.signals)
            errors.append(f"{path}: no supported signal pair in its use; it supports: {supports}")


def _section(service: Mapping[str, Any], key: str, default: Any, errors: list[str], warnings: list[str]) -> Any:
    path = f"service::{key}"
    found: list[str] = []
    value, problems = decode_and_validate(default, service.get(key), found)
    warnings.extend(f"{path}::{message}" for message in found)
    # "<root>: expected a mapping" is about the section itself
    errors.extend(f"{path}: {m.removeprefix('<root>: ')}" if m.startswith("<root>: ") else f"{path}::{m}"
                  for m in problems)
    return value if not problems else default


def build_config(raw: Mapping[str, Any], registry: Registry) -> GatewayConfig:
    """Turn a merged, env-expanded mapping into a ``GatewayConfig``, or raise ``ConfigError`` with every error."""
    errors: list[str] = []
    warnings: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError(f"<root>: expected a mapping of sections, got {type(raw).__name__}")
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            errors.append(f"{key}: unknown top-level key; valid keys are: {', '.join(TOP_LEVEL_KEYS)}")
    components = _build_components(raw, registry, errors, warnings)
    service = raw.get("service") or {}
    if not isinstance(service, Mapping):
        errors.append(f"service: expected a mapping, got {type(service).__name__}")
        service = {}
    for key in service:
        if key not in SERVICE_KEYS:
            errors.append(f"service::{key}: unknown key; valid keys are: {', '.join(SERVICE_KEYS)}")
    pipelines = _build_pipelines(service, components, raw, errors)
    _check_references(pipelines, components, raw, errors, warnings)
    extensions = _parse_ids(service.get("extensions"), "service::extensions", errors)
    section = raw.get("extensions")
    declared_extensions: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    for i, cid in enumerate(extensions):
        if str(cid) not in declared_extensions:
            errors.append(f"service::extensions::{i}: references extension {str(cid)!r}, which is not configured")
    telemetry = _section(service, "telemetry", TelemetryConfig(), errors, warnings)
    warnings.extend(telemetry.warnings())
    admin = _section(service, "admin", AdminConfig(), errors, warnings)
    if errors:
        raise ConfigError(errors)
    return GatewayConfig(components, pipelines, extensions, telemetry, raw, admin, tuple(warnings))
