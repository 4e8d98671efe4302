"""Routes each part of a request to one backend by consistent hashing of its routing key; one otlp_grpc exporter
per backend. Traces by trace id (the default) are split on the wire; other keys and signals go through
``routing.route``.

A traces request is split by trace id without decoding it: it is serialized once and cut into per-trace runs of span
bytes by the tail_sampling processor's wire walker, then the runs for each backend are assembled into one request
(resource and scope kept) and handed to that backend's exporter, which queues and retries on its own.

Backends are fixed (``static``) or resolved periodically (``dns``). On a change the new backends are started
first, then the ring and the backend map are replaced by one assignment each with no await in between, so a
request is always routed on a consistent pair; removed backends are shut down afterwards, in the background, so
their queues drain while resolution goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import (
    Batch,
    ComponentID,
    ComponentSettings,
    Envelope,
    EnvelopeTable,
    Host,
    Kind,
    OtlpGrpcExporter,
    RetryableError,
    Signal,
    assemble,
    consume,
    split_request,
)

from .config import Config
from .metrics import loadbalancer_metrics
from .resolver import DnsResolver, ResolveFn, getaddrinfo_ips
from .ring import HashRing
from .routing import route

__all__ = ["LoadBalancingExporter"]


class LoadBalancingExporter:
    def __init__(self, settings: ComponentSettings, config: Config, resolve: ResolveFn | None = None) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self.signal = settings.signal or Signal.TRACES
        self.routing_key = config.key_for(self.signal)
        #: What the dns resolver calls to turn the name into IPs; replaceable before start (tests feed IP lists).
        self.resolve: ResolveFn = resolve or getaddrinfo_ips
        #: The ring and the backends it names; replaced together (never mutated) when the backends change.
        self.ring: HashRing | None = None
        self.backends: dict[str, Any] = {}  # OtlpGrpcExporter; consume_traces is set per instance
        self._envelopes = EnvelopeTable()
        self._host: Host | None = None
        self._task: asyncio.Task[None] | None = None
        self._retiring: dict[str, asyncio.Task[None]] = {}
        metrics = loadbalancer_metrics(settings.telemetry.registry)
        kind = "dns" if config.resolver.dns is not None else "static"
        metrics.num_backends.labels(str(settings.id), kind).set_function(lambda: len(self.backends))
        outcomes = {ok: metrics.resolutions.labels(str(settings.id), kind, "success" if ok else "failure")
                    for ok in (True, False)}
        self._dns: DnsResolver | None = None
        if config.resolver.dns is not None:
            self._dns = DnsResolver(config.resolver.dns, self.logger, lambda ok: outcomes[ok].inc())
        else:
            self.backends = {endpoint: self._create(endpoint) for endpoint in sorted(set(config.endpoints))}
            self.ring = HashRing(self.backends)
            outcomes[True].inc()

    def _create(self, endpoint: str) -> Any:
        # Each backend reports its own exporter metrics, labelled load_balancing[/name]/<endpoint>.
        settings = self.settings
        cid = ComponentID(settings.id.type, f"{settings.id.name}/{endpoint}" if settings.id.name else endpoint)
        sub = ComponentSettings(cid, Kind.EXPORTER, settings.telemetry.root.for_component(
            Kind.EXPORTER, cid, self.signal), self.signal)
        return OtlpGrpcExporter(sub, self.config.backend(endpoint))

    async def start(self, host: Host) -> None:
        self._host = host
        if self._dns is None:
            for backend in self.backends.values():
                await backend.start(host)
            return
        # A failed first resolution is not fatal: requests are refused as retryable until a backend appears.
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_periodically(), name=f"exporter {self.settings.id} dns")

    async def _refresh_periodically(self) -> None:
        assert self._dns is not None
        while True:
            await asyncio.sleep(self._dns.config.interval)
            try:
                await self.refresh()
            except Exception:  # a bug here must not stop resolution for good
                self.logger.exception("Updating the backends failed; trying again at the next interval.")

    async def refresh(self) -> None:
        """Resolve once and, if the backends changed, move to the new ones."""
        assert self._dns is not None
        endpoints = await self._dns.endpoints(self.resolve)
        if endpoints is not None and endpoints != list(self.backends):
            await self._update(endpoints)

    async def _update(self, endpoints: list[str]) -> None:
        started: dict[str, Any] = {}
        try:
            for endpoint in endpoints:
                if endpoint in self.backends:
                    continue
                retiring = self._retiring.get(endpoint)
                if retiring is not None:  # back before its old backend finished draining: one at a time
                    await asyncio.wait([retiring])
                try:
                    backend = self._create(endpoint)
                    await backend.start(self._host)
                except Exception as exc:
                    self.logger.error("Could not start a backend; trying again at the next resolution.",
                                      extra={"endpoint": endpoint, "error": str(exc)})
                    continue
                started[endpoint] = backend
        except BaseException:
            for endpoint, backend in started.items():
                self._retire(endpoint, backend)
            raise
        previous = self.backends
        backends = {e: previous[e] if e in previous else started[e]
                    for e in endpoints if e in previous or e in started}
        if list(backends) == list(previous):
            return
        self.ring = HashRing(backends) if backends else None
        self.backends = backends
        removed = [e for e in previous if e not in backends]
        self.logger.info("Backends changed.", extra={"added": sorted(started), "removed": removed,
                                                     "backends": len(backends)})
        for endpoint in removed:
            self._retire(endpoint, previous[endpoint])

    def _retire(self, endpoint: str, backend: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._shutdown_backend(endpoint, backend),
                                                      name=f"exporter {self.settings.id} retire {endpoint}")
        self._retiring[endpoint] = task
        task.add_done_callback(lambda t: self._retiring.pop(endpoint) if self._retiring.get(endpoint) is t
                               else None)

    async def _shutdown_backend(self, endpoint: str, backend: Any) -> None:
        try:
            await backend.shutdown()
        except Exception as exc:
            self.logger.error("Error shutting down a removed backend.",
                              extra={"endpoint": endpoint, "error": str(exc)})

    async def shutdown(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # Cancel until it is done: on 3.11 a cancellation racing with wait_for can be swallowed (cpython#86296).
            while not task.done():
                task.cancel()
                await asyncio.wait([task], timeout=0.1)
        retiring = list(self._retiring.values())
        results = await asyncio.gather(*(b.shutdown() for b in self.backends.values()), *retiring,
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _consume(self, batch: Batch) -> None:
        ring, backends = self.ring, self.backends  # one consistent pair, whatever a refresh does meanwhile
        if ring is None:
            hostname = self._dns.hostname if self._dns is not None else "the static resolver"
            raise RetryableError(f"no backend resolved for {hostname}")
        if len(backends) == 1:
            await consume(next(iter(backends.values())), self.signal, batch)
            return
        if self.signal is Signal.TRACES and self.routing_key == "traceID":
            await self._route_trace_ids(batch, ring, backends)  # type: ignore[arg-type]
            return
        routed = route(self.signal, batch, self.routing_key, ring.endpoint_for, self.config.routing_attributes)
        await _all(consume(backends[endpoint], self.signal, part) for endpoint, part in routed.items())

    consume_traces = consume_metrics = consume_logs = _consume

    async def _route_trace_ids(self, batch: ExportTraceServiceRequest, ring: HashRing,
                               backends: dict[str, Any]) -> None:
        routed: dict[str, list[tuple[Envelope, bytes]]] = {}
        endpoint_for = ring.endpoint_for
        for resource_header, scope_header, runs in split_request(batch.SerializeToString(), batch):
            envelope = self._envelopes.get(resource_header, scope_header)
            for run in runs:
                routed.setdefault(endpoint_for(run[0]), []).append((envelope, run[1]))
        await _all(backends[endpoint].consume_traces(ExportTraceServiceRequest.FromString(assemble(items)))
                   for endpoint, items in routed.items())


async def _all(sends: Iterable[Awaitable[None]]) -> None:
    """Await every send. The first failure goes back to the sender, as the Collector does: a retry may resend to
    the backends that accepted their part (duplicates, never losses). A backend removed meanwhile refuses as
    retryable."""
    results = await asyncio.gather(*sends, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
