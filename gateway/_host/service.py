"""The running gateway: self-telemetry endpoint, extensions, then the pipeline graph; and their orderly stop."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.metadata
import logging
import signal as signals
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import Info

from gateway._host import mallocpolicy, redact
from gateway._host.admin import AdminServer, json_response
from gateway._host.config import GatewayConfig, build_config
from gateway._host.confmap import load_sources, source_file
from gateway._host.graph import Graph
from gateway._host.registry import Registry, load_registry
from gateway._host.reload import ReloadResult, reload_service
from gateway._host.running import RunningHost
from gateway._host.selfexport import PeriodicPush
from gateway._host.stats import Stats
from gateway._host.statuspage import add_status_page
from gateway._host.tap import TapHub
from gateway._host.telemetry import CONTENT_TYPE_LATEST, Telemetry
from gateway._host.workers import context as workers
from gateway._host.workers.storage import WORKER_PREFIX, adopt
from gateway._host.workers.worker import WorkerRole
from gateway.component import ComponentSettings, Kind
from gateway.errors import ConfigError
from gateway.helpers.native import spanscan
from gateway.host import Status
from gateway.netaddr import format_addresses, listen_error, split_host_port

__all__ = ["Service", "gateway_version", "load_config", "resource_attributes"]

log = logging.getLogger("otelgw.service")


def load_config(paths: Sequence[str], registry: Registry) -> GatewayConfig:
    """Read, merge and type-check configuration files; raises ``ConfigError`` listing every problem.

    The secrets of the files are registered with ``gateway._host.redact`` before anything is checked, and the error
    messages come back redacted, so no caller (``validate``, reload, logs) can print a secret value.
    """
    raw, expansion = load_sources(paths)
    raw = workers.adjust_config(raw)  # unchanged unless this process is one of several workers
    redact.register_config(raw)
    try:
        registry.plugin_manager.hook.otelgw_config_loaded(config=raw)
        config = build_config(raw, registry)
    except ConfigError as exc:
        raise ConfigError([redact.redact(_name_unset(m, expansion.unset)) for m in exc.messages]) from None
    warnings = [*expansion.warnings, *config.warnings]
    return dataclasses.replace(config, warnings=tuple(redact.redact(w) for w in warnings))


def _name_unset(message: str, unset: dict[str, str]) -> str:
    """An error on a key an unset variable left empty says which variable that was."""
    key = message.partition(": ")[0]
    for path, name in unset.items():
        if key == path or key.startswith(f"{path}::") or path.startswith(f"{key}::"):
            return f"{message} (the value came from ${{env:{name}}}, and {name} is not set)"
    return message


def resource_attributes(config: GatewayConfig) -> dict[str, str]:
    """The resource of the gateway's own telemetry: service name, version and instance, then the config's
    ``service::telemetry::resource`` (a null value removes an attribute)."""
    attributes = {"service.name": "otelgw", "service.version": gateway_version(), "service.instance.id": _INSTANCE}
    for key, value in config.telemetry.resource.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    return attributes


def gateway_version() -> str:
    try:
        return importlib.metadata.version("otelgw")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


_INSTANCE = str(uuid.uuid4())


class Service:
    """One gateway instance. ``await start()`` then ``await shutdown()``; or ``await run()`` until SIGTERM/SIGINT."""

    def __init__(self, config: GatewayConfig, registry: Registry | None = None,
                 config_paths: Sequence[str] = ()) -> None:
        self.config = config
        #: The files ``reload`` reads again (SIGHUP, ``POST /-/reload``).
        self.config_paths = list(config_paths)
        self.registry = registry or load_registry()
        self.telemetry = Telemetry()
        # The resource of the gateway's own metrics, as Prometheus shows a resource: labels of target_info.
        Info("target", "Attributes of the gateway's own telemetry (service::telemetry::resource).",
             registry=self.telemetry.registry).info(
                 {k.replace(".", "_"): v for k, v in resource_attributes(config).items()})
        #: Items the last shutdown had to drop (counted by the components, with their reasons).
        self.lost_at_shutdown = 0
        self.admin = AdminServer(config.admin)
        self.host = RunningHost(self.telemetry, self.admin)
        self.graph = Graph(config, self.telemetry)
        self._extensions: list[tuple[Kind, Any, Any]] = []
        self._metrics_runners: list[web.AppRunner] = []
        self._pushes: list[PeriodicPush] = []
        #: Port of the first pull reader (the gateway's own /metrics), once started.
        self.metrics_port: int | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._reload_tasks: set[asyncio.Task[Any]] = set()
        #: Seconds between checks of the config files' content by ``run`` (``--watch-config``); 0 is off.
        self.watch_interval = 0.0
        #: Successful reloads so far (0: the configuration the gateway started with).
        self.generation = 0
        self.taps = TapHub(lambda: self.graph)
        self.stats = Stats(self.telemetry, self.host, lambda: self.graph, lambda: self.config.raw,
                           lambda: self.generation, lambda: self.taps.attached)
        self.host.stats = self.stats
        context = workers.current()
        #: This process's part in ``otelgw run --workers N`` (routing, reports); None for a gateway on its own.
        self.worker = WorkerRole(context, self) if context is not None and context.count > 1 else None

    @classmethod
    def from_files(cls, paths: Sequence[str], extra_plugins: Iterable[Any] = ()) -> Service:
        registry = load_registry(extra_plugins)
        return cls(load_config(paths, registry), registry, paths)

    async def start(self) -> None:
        self.admin.add_route("GET", "/status", self._status)
        self.admin.add_route("POST", "/-/reload", self._reload_route)
        self.admin.add_route("GET", "/api/stats", self.stats.handle)
        self.admin.add_route("GET", "/api/tap", self.taps.handle)
        add_status_page(self.admin)
        try:
            await self.stats.start()
            await self._start_metrics_endpoint()
            await self.admin.start()
            await self.start_extensions(self.config, self.config.extensions)
            if self.worker is not None:
                await self.worker.start()
            await self.graph.start(self.host)
        except Exception:
            if self.worker is not None:
                await self.worker.stop()
            await self.stop_extensions()
            await self.admin.stop()
            await self._stop_metrics_endpoint()
            await self.stats.stop()
            raise
        self.host.ready = True
        if self.worker is not None:
            self.worker.write_report()
        self.registry.plugin_manager.hook.otelgw_service_started(host=self.host)
        log.info("gateway started", extra={"pipelines": ", ".join(str(p) for p in sorted(self.config.pipelines)),
                                           "native_span_scan": "off" if spanscan is None else "on",
                                           "malloc_tuning": "on" if mallocpolicy.applied() else "off"})

    async def shutdown(self) -> list[BaseException]:
        """Receivers first, so every stage drains into the next; collects every error instead of stopping."""
        self.host.ready = False
        self.registry.plugin_manager.hook.otelgw_service_stopping(host=self.host)
        dropped_before = self.telemetry.dropped_items()
        self.taps.end_all()
        if self.worker is not None:
            # Items routed here by other workers keep entering until this worker's receivers have stopped.
            errors = await self.graph.shutdown(self.host, receivers_stopped=self.worker.router.close_inbound)
            await self.worker.stop()
        else:
            errors = await self.graph.shutdown(self.host)
        errors.extend(await self.stop_extensions())
        await self.admin.stop()
        await self._stop_metrics_endpoint()
        await self.stats.stop()
        lost = int(self.telemetry.dropped_items() - dropped_before)
        if lost:
            # The truth about the shutdown: items that were accepted but could not be delivered, nor kept on disk
            # for the next start, within the grace period (each component logged its own part with the reason).
            log.error("gateway stopped; items were lost during shutdown",
                      extra={"errors": len(errors), "lost_items": lost})
        else:
            log.info("gateway stopped", extra={"errors": len(errors), "lost_items": 0})
        self.lost_at_shutdown = lost
        return errors

    async def start_extensions(self, config: GatewayConfig, ids: Iterable[Any]) -> None:
        for cid in ids:
            cc = config.get(Kind.EXTENSION, cid)
            assert cc.factory.create_extension is not None
            if cc.factory.type == "file_storage":  # data another worker count left behind (workers.storage)
                context = workers.current()
                index, count = (context.index, context.count) if context is not None else (0, 1)
                home = Path(cc.config.directory)
                base = home.parent if count > 1 and home.name == f"{WORKER_PREFIX}{index}" else home
                await asyncio.to_thread(adopt, base, index, count, cc.config.fsync)
            settings = ComponentSettings(cid, Kind.EXTENSION, self.telemetry.for_component(Kind.EXTENSION, cid))
            extension = cc.factory.create_extension(settings, cc.config)
            self.host.report_status(Kind.EXTENSION, cid, Status.STARTING)
            await extension.start(self.host)
            self.host.extensions[cid] = extension
            self._extensions.append((Kind.EXTENSION, cid, extension))
            self.host.report_status(Kind.EXTENSION, cid, Status.OK)

    async def reload(self, paths: Sequence[str] | None = None) -> ReloadResult:
        """Load the config files again and move to them, keeping every unchanged component running."""
        async with self._reload_lock:
            self.taps.end_all()  # a tap reads the fan-outs of the graph being replaced
            result = await reload_service(self, list(paths) if paths is not None else self.config_paths)
            if result.ok:
                self.generation += 1
                if self.worker is not None:
                    self.worker.write_report()
            return result

    async def _reload_route(self, request: web.Request) -> web.Response:
        result = await self.reload()
        return json_response(result.as_dict(), 200 if result.ok else 400)

    def _reload_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload on SIGHUP")
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)

    async def _status(self, request: web.Request) -> web.Response:
        return json_response({"ready": self.host.ready, "components": self.host.component_status()})

    def request_stop(self) -> None:
        self._stop.set()

    def _config_digest(self) -> bytes:
        """A digest of every config file's bytes (unreadable ones count as empty). Content, not mtime: kubelet
        updates a ConfigMap volume by swapping a symlink, which a changed inode or mtime would only sometimes show."""
        digest = hashlib.sha256()
        for source in self.config_paths:
            path = source_file(source)
            if path is None:  # env: and yaml: sources change only with a restart
                continue
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"\0unreadable")
            digest.update(b"\0")
        return digest.digest()

    async def watch_config(self, interval: float) -> None:
        """Reload (the SIGHUP path) whenever a config file's content changes; checked every ``interval`` s."""
        seen = self._config_digest()
        while True:
            await asyncio.sleep(interval)
            current = self._config_digest()
            if current != seen:
                seen = current
                log.info("a configuration file changed; reloading", extra={"files": ", ".join(self.config_paths)})
                self._reload_in_background()

    async def run(self, grace_period: float | None = None) -> int:
        """Start, wait for SIGTERM/SIGINT (or ``request_stop``), shut down. Returns a process exit code.

        With ``watch_interval`` > 0, the configuration is reloaded when its files change (``--watch-config``)."""
        watch_interval = self.watch_interval
        loop = asyncio.get_running_loop()
        for sig in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signals.SIGHUP, self._reload_in_background)
        await self.start()
        watcher = None
        if watch_interval > 0 and self.config_paths:
            watcher = loop.create_task(self.watch_config(watch_interval), name="config file watch")
        await self._stop.wait()
        if watcher is not None:
            watcher.cancel()
        log.info("shutting down")
        if grace_period is not None:
            # Exporters keep retrying what they hold until shortly before the grace period ends; the margin is
            # for counting and logging what could not be delivered before the process is cut off.
            self.host.drain_deadline = time.monotonic() + grace_period - min(1.0, grace_period / 10)
        try:
            errors = await asyncio.wait_for(self.shutdown(), grace_period)
        except TimeoutError:
            log.error("shutdown did not finish within the grace period: what was still in memory is lost",
                      extra={"grace_period_s": grace_period})
            return 1
        return 1 if errors or self.lost_at_shutdown else 0

    async def stop_extensions(self, only: set[Any] | None = None) -> list[BaseException]:
        """Stop every extension (or those in ``only``) in reverse start order; collect every error."""
        errors: list[BaseException] = []
        for kind, cid, extension in reversed(self._extensions):
            if only is not None and cid not in only:
                continue
            self.host.extensions.pop(cid, None)
            try:
                await extension.shutdown()
            except Exception as exc:
                log.error("error shutting down extension %s: %s", cid, exc)
                errors.append(exc)
            self.host.report_status(kind, cid, Status.STOPPED)
        self._extensions = [e for e in self._extensions if only is not None and e[1] not in only]
        return errors

    async def _start_metrics_endpoint(self) -> None:
        """Every pull reader serves /metrics at its address; every periodic reader pushes over OTLP."""
        settings = self.config.telemetry.metrics
        resource = resource_attributes(self.config)

        async def metrics(_: web.Request) -> web.Response:
            # prometheus-client is thread-safe; a worker thread keeps a large registry off the event loop.
            body = await asyncio.to_thread(self.telemetry.exposition)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

        try:
            for address in settings.pull_addresses:
                app = web.Application()
                app.router.add_get("/metrics", metrics)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                host, port = split_host_port(address)
                try:
                    await web.TCPSite(runner, host, port).start()
                except OSError as exc:
                    await runner.cleanup()
                    raise listen_error("service::telemetry::metrics", address, exc) from None
                self._metrics_runners.append(runner)
                if self.metrics_port is None:
                    self.metrics_port = runner.addresses[0][1]
                log.info("serving the gateway's own metrics", extra={"address": format_addresses(runner.addresses)})
            for reader in settings.periodic:
                push = PeriodicPush(reader, self.telemetry.registry, resource)
                await push.start()
                self._pushes.append(push)
        except Exception:
            await self._stop_metrics_endpoint()
            raise

    async def _stop_metrics_endpoint(self) -> None:
        for push in self._pushes:
            await push.shutdown()
        self._pushes.clear()
        for runner in self._metrics_runners:
            await runner.cleanup()
        self._metrics_runners.clear()
