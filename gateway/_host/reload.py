"""Hot reload of a running ``Service``: SIGHUP or ``POST /-/reload`` on the admin endpoint.

The files are read and checked first; an invalid configuration is answered with every error and changes
nothing. Otherwise a new graph is built that takes over every running component whose config (and whatever it
feeds) is unchanged, queues and buffers and open ports included. Then, in order: reused receivers hold new
requests for a moment; the old components that are not taken over stop upstream-first (so they drain into
their downstream, and persistent queues keep their backlog on disk for their successor); changed extensions
restart; the new components start downstream-first; the held receivers are pointed at the new pipelines. If a
new component fails to start, the previous configuration is started again the same way.

``service::admin`` and ``service::telemetry`` are read at start-up only; a change to them is reported and
needs a restart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway._host.files import check_files
from gateway._host.graph import Graph
from gateway._host.redact import redact
from gateway.component import ComponentID, Kind
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway._host.config import GatewayConfig
    from gateway._host.service import Service

__all__ = ["ReloadResult", "reload_service"]

log = logging.getLogger("otelgw.service")


@dataclass
class ReloadResult:
    ok: bool
    errors: list[str] = field(default_factory=list)
    #: Labels of components that kept running with their state.
    kept: list[str] = field(default_factory=list)
    #: Labels of components created and started by the reload.
    started: list[str] = field(default_factory=list)
    #: Labels of components the reload stopped.
    stopped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"reloaded": False, "errors": [redact(e) for e in self.errors]}
        return {"reloaded": True, "kept": self.kept, "started": self.started, "stopped": self.stopped,
                "warnings": self.warnings}


def _extensions(config: GatewayConfig) -> dict[ComponentID, Any]:
    return {cid: config.get(Kind.EXTENSION, cid).config for cid in config.extensions}


async def reload_service(service: Service, paths: list[str]) -> ReloadResult:
    from gateway._host.service import load_config  # the service module imports this one

    if not paths:
        return ReloadResult(False, ["no configuration files to reload: the gateway was not started from files"])
    try:
        new_config = load_config(paths, service.registry)
        check_files(new_config)
    except ConfigError as exc:
        # Every error, in one line each (redacted by load_config and again by the log filter).
        log.error("reload rejected: invalid configuration (%d error(s)); the running pipelines are unchanged:\n%s",
                  len(exc.messages), "\n".join(f"  {m}" for m in exc.messages), extra={"errors": len(exc.messages)})
        return ReloadResult(False, exc.messages)
    except Exception as exc:  # unreadable file
        log.error("reload rejected: %s; the running pipelines are unchanged", exc)
        return ReloadResult(False, [redact(str(exc))])
    old_config = service.config
    result = ReloadResult(True, warnings=list(new_config.warnings))
    for warning in new_config.warnings:
        log.warning("configuration: %s", warning)
    if new_config.admin != old_config.admin or new_config.telemetry != old_config.telemetry:
        result.warnings.append("service::admin and service::telemetry changes take effect after a restart")
    old_ext, new_ext = _extensions(old_config), _extensions(new_config)
    changed = {cid for cid in old_ext.keys() | new_ext.keys() if old_ext.get(cid, ()) != new_ext.get(cid, ())}
    try:
        graph = Graph(new_config, service.telemetry, previous=service.graph, changed_extensions=changed)
    except ConfigError as exc:
        log.error("reload rejected: %s; the running pipelines are unchanged", "; ".join(exc.messages))
        return ReloadResult(False, exc.messages)
    old_graph = service.graph
    result.kept = [n.label for n in graph.nodes if id(n.component) in graph.reused]
    result.started = [n.label for n in graph.nodes if id(n.component) not in graph.reused]
    result.stopped = [n.label for n in old_graph.nodes if id(n.component) not in graph.reused]
    graph.hold_reused_receivers()
    try:
        await _switch(service, old_graph, graph, old_config, new_config, changed)
    except Exception as exc:
        log.error("reload failed while starting the new configuration: %s; restoring the previous one", exc)
        result = ReloadResult(False, [f"starting the new configuration failed: {exc}; "
                                      f"the previous configuration was restored"])
        try:
            rollback = Graph(old_config, service.telemetry, previous=graph, changed_extensions=changed)
            await _switch(service, graph, rollback, new_config, old_config, changed)
        except Exception as again:
            log.critical("could not restore the previous configuration: %s; stopping", again)
            result.errors.append(f"restoring the previous configuration failed too: {again}; the gateway stops")
            graph.release_held()
            service.request_stop()
        return result
    log.info("configuration reloaded", extra={"kept": len(result.kept), "started": len(result.started),
                                              "stopped": len(result.stopped)})
    return result


async def _switch(service: Service, old: Graph, new: Graph, old_config: GatewayConfig,
                  new_config: GatewayConfig, changed: set[ComponentID]) -> None:
    await old.shutdown(service.host, keep=new.reused)
    for node in old.nodes:
        if id(node.component) not in new.reused:
            service.host.forget_status(node.kind, node.id, node.pipeline)
    await service.stop_extensions(only=changed)
    for cid in changed:
        service.host.forget_status(Kind.EXTENSION, cid)
    service.config, service.graph = new_config, new
    await service.start_extensions(new_config, [cid for cid in new_config.extensions if cid in changed])
    await new.start(service.host)
    new.commit()
