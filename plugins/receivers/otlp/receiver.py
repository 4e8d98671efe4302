"""The ``otlp`` receiver: one gRPC and one HTTP server shared by every signal wired to it.

The host creates the receiver once per signal; each create call gets a handle (``helpers.shared``) on one
``OtlpReceiver``, which records each signal's next consumer. Both servers decode at the edge, then call
:meth:`Route.deliver`, which counts items, hands the batch on (with the protobuf bytes it was parsed from, for
processors that scan bytes: ``gateway.wirebytes``) and turns a refusal into a status via
``gateway.errors.status_for``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from gateway import (
    Batch,
    ClientInfo,
    ComponentSettings,
    ConsumeError,
    Consumer,
    Host,
    ReloadingServerTLS,
    Signal,
    SkipBatchError,
    StatusMapping,
    TLSServerConfig,
    WireBatch,
    attached,
    check_request,
    client,
    count_items,
    hand_on,
    server_auth,
    status_for,
)

from .config import Config, Protocols
from .grpc_server import GrpcServer
from .http_server import HttpServer
from .ids import Rejection, drop_invalid_ids, ids_valid

ConsumeFn = Callable[[Batch], Awaitable[None]]
Authenticate = Callable[[Any], bool]

#: At most one error log per this many seconds for unexpected (non-ConsumeError) downstream failures.
_UNEXPECTED_LOG_INTERVAL_S = 10.0


_REJECTED: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def _rejected_counter(registry: CollectorRegistry) -> Counter:
    counter = _REJECTED.get(registry)
    if counter is None:
        counter = _REJECTED[registry] = Counter(
            "otelgw_receiver_rejected_items", "Items taken out of a request because they break the OTLP rules "
            "(reason: invalid_trace_id, invalid_span_id, invalid_parent_span_id); the rest went on.",
            ["receiver", "transport", "reason"], registry=registry)
    return counter


class Route:
    """One signal on one transport: where its batches go and the counters that record them."""

    __slots__ = ("_last_unexpected_log", "_rejected", "accepted", "consume", "consumer", "logger", "receiver",
                 "refused", "signal", "transport")

    def __init__(self, signal: Signal, transport: str, consumer: Consumer,
                 settings: ComponentSettings) -> None:
        self.signal = signal
        self.transport = transport
        self.consumer = consumer
        self.consume: ConsumeFn = getattr(consumer, f"consume_{signal.value}")
        self.accepted, self.refused = settings.telemetry.receiver_counters(transport, signal)
        self.logger = settings.telemetry.logger
        self.receiver = str(settings.id)
        self._rejected = _rejected_counter(settings.telemetry.registry)
        self._last_unexpected_log = float("-inf")

    def take(self, data: bytes) -> Batch | WireBatch:
        """The protobuf request ``data``, checked (``gateway.check_request``): as bytes (a ``WireBatch``) when
        the check needed no parse and every item's ids are valid, else parsed, for :meth:`screen` to take out
        the items with invalid ids. Raises ``ValueError`` when ``data`` is not a valid request."""
        try:
            items, parsed = check_request(self.signal, data)
        except ValueError as exc:  # what is wrong and where, and what the sender should have sent
            raise ValueError(f"{exc}; not a valid {self.signal.request_type.DESCRIPTOR.full_name}") from None
        if parsed is not None:
            return parsed
        if items and not ids_valid(self.signal, data):
            return self.signal.request_type.FromString(data)
        return WireBatch(self.signal, [data], [items])

    def screen(self, batch: Batch | WireBatch, wire: bytes | None = None) -> Rejection | None:
        """Take out the items whose ids break the OTLP rules (``ids``), counting them as refused with a reason.
        Call before :meth:`deliver`, and deliver without wire bytes when this returned a rejection (the batch
        no longer matches them). ``wire``: the protobuf bytes ``batch`` was parsed from, which makes the
        check of a valid request cheap. A ``WireBatch`` from :meth:`take` was checked there."""
        if isinstance(batch, WireBatch):
            return None
        rejection = drop_invalid_ids(self.signal, batch, wire)
        if rejection is not None:
            self.refused.inc(rejection.count)
            for reason, count in rejection.reasons.items():
                self._rejected.labels(self.receiver, self.transport, reason).inc(count)
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("rejected items with invalid ids: %s", rejection.message,
                                  extra={"signal": self.signal.value, "transport": self.transport})
        return rejection

    async def deliver(self, batch: Batch | WireBatch, wire: bytes | None = None,
                      sender: ClientInfo | None = None) -> StatusMapping | None:
        """Hand ``batch`` downstream. None means success; otherwise how to answer the sender.

        ``wire``: the protobuf bytes ``batch`` was parsed from, offered to byte-scanning processors while the
        hand-over lasts (``gateway.wirebytes``). A ``WireBatch`` goes on as bytes (``hand_on``), parsed only
        where a component needs the message. ``sender``: the request's metadata (``include_metadata``),
        current for the hand-over (``gateway.client``).
        """
        items = batch.items if isinstance(batch, WireBatch) else count_items(self.signal, batch)
        if items == 0:
            return None  # an empty request is answered with success and not forwarded (docs/protocols.md §1.1)
        try:
            with client.attached(sender):
                if isinstance(batch, WireBatch):
                    await hand_on(self.consumer, batch)
                elif wire is None:
                    await self.consume(batch)
                else:
                    with attached(batch, wire):
                        await self.consume(batch)
        except SkipBatchError:
            pass  # dropped on purpose downstream: success for the sender
        except Exception as exc:
            self.refused.inc(items)
            self._log_refusal(exc, items)
            return status_for(exc)
        self.accepted.inc(items)
        return None

    def _log_refusal(self, exc: Exception, items: int) -> None:
        extra = {"signal": self.signal.value, "transport": self.transport, "items": items}
        if isinstance(exc, ConsumeError):
            # Refusals under backpressure are normal operation; the refused counter is the signal to watch.
            if self.logger.isEnabledFor(logging.DEBUG):
                self.logger.debug("refused a batch: %s", exc, extra=extra)
            return
        now = time.monotonic()
        if now - self._last_unexpected_log >= _UNEXPECTED_LOG_INTERVAL_S:
            self._last_unexpected_log = now
            self.logger.error("downstream failed unexpectedly; answered retryable", exc_info=exc, extra=extra)


class OtlpReceiver:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self._consumers: dict[Signal, Consumer] = {}
        self._servers: list[GrpcServer | HttpServer] = []
        self._tls: list[ReloadingServerTLS] = []
        self._tls_task: asyncio.Task[None] | None = None
        #: Address a local client can dial once started ("127.0.0.1:PORT"); None when that protocol is off.
        self.grpc_address: str | None = None
        self.http_address: str | None = None

    def set_consumer(self, signal: Signal, next_consumer: Consumer) -> None:
        self._consumers[signal] = next_consumer

    def routes(self, transport: str) -> dict[Signal, Route | None]:
        """Every signal, with None for one no pipeline wires to this receiver."""
        return {signal: (Route(signal, transport, self._consumers[signal], self.settings)
                         if signal in self._consumers else None) for signal in Signal}

    def bad_request(self, transport: str) -> Callable[[str], None]:
        telemetry = self.settings.telemetry
        return lambda reason: telemetry.bad_request(transport, reason)

    def _server_tls(self, config: TLSServerConfig | None, transport: str) -> ReloadingServerTLS | None:
        if config is None:
            return None
        logger = self.logger
        tls = ReloadingServerTLS(config, lambda message: logger.warning(message, extra={"transport": transport}),
                                 alpn=["h2"] if transport == "grpc" else None)  # gRPC clients insist on h2
        self._tls.append(tls)
        return tls

    async def _reload_certificates(self) -> None:
        interval = min(t.config.reload_interval for t in self._tls)
        while True:
            await asyncio.sleep(interval)
            for tls in self._tls:
                if tls.maybe_reload():
                    self.logger.info("reloaded TLS certificates", extra={"cert_file": tls.config.cert_file})

    async def start(self, host: Host) -> None:
        protocols: Protocols = self.config.protocols
        try:
            if protocols.grpc is not None:
                grpc_server = GrpcServer(protocols.grpc, self.routes("grpc"), self.bad_request("grpc"),
                                         self.logger, tls=self._server_tls(protocols.grpc.tls, "grpc"),
                                         authenticate=server_auth(host, protocols.grpc.auth,
                                                                  "protocols::grpc::auth", self.logger))
                self._servers.append(grpc_server)
                self.grpc_address = await grpc_server.start()
            if protocols.http is not None:
                http_server = HttpServer(protocols.http, self.routes("http"), self.bad_request("http"),
                                         self.logger, tls=self._server_tls(protocols.http.tls, "http"),
                                         authenticate=server_auth(host, protocols.http.auth,
                                                                  "protocols::http::auth", self.logger))
                self._servers.append(http_server)
                self.http_address = await http_server.start()
        except BaseException:
            await self.shutdown()
            raise
        if self._tls and min(t.config.reload_interval for t in self._tls) > 0:
            self._tls_task = asyncio.create_task(self._reload_certificates(), name="otlp receiver TLS reload")
        # The addresses actually bound: 0.0.0.0 says "every interface", which the dialable address would hide.
        listening = {type(s).__name__: s.listening for s in self._servers}
        self.logger.info("otlp receiver listening", extra={
            "grpc": listening.get("GrpcServer", "off"), "http": listening.get("HttpServer", "off"),
            "signals": ", ".join(s.value for s in self._consumers)})

    async def shutdown(self) -> None:
        """Stop accepting, let requests in flight finish delivering, then close; raises the first error."""
        if self._tls_task is not None:
            self._tls_task.cancel()
            self._tls_task = None
        servers, self._servers = self._servers, []
        results = await asyncio.gather(*(server.stop() for server in servers), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
