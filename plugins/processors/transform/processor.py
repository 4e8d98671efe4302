"""The ``transform`` processor: runs its compiled statement groups over every batch, in order.

Statements were compiled to closures at config load (``gateway.ottl``). A batch in which no statement ran is
handed on marked unchanged, so its wire bytes stay usable downstream. With ``error_mode: propagate`` a failing
statement refuses the whole batch with a retryable error that names the statement and the item (see README).

Trace batches that come with the bytes they were received as (``gateway.wire_bytes``) run on those bytes when
every group can (``gateway.ottl.WirePlan``: span statements that edit attributes, see gateway/ottl/README.md):
the result is handed on as a ``WireBatch``, which an exporter (or ``batch``) sends as it is and anything else
gets parsed once, so the request is not serialized again.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from gateway import (
    ComponentSettings,
    Consumer,
    Processor,
    RetryableError,
    Signal,
    WireBatch,
    count_items,
    hand_on,
    unchanged,
    wire_bytes,
)
from gateway.ottl import ErrorReporter, OttlRunError, StatementGroup, WirePlan, ottl_metrics

from .config import Config


class TransformProcessor(Processor):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: Consumer) -> None:
        super().__init__(settings, config, next_consumer)
        signal = (settings.signal or Signal.TRACES).value
        errors = ottl_metrics(settings.telemetry.registry).errors
        name = str(settings.id)
        self.reporter = ErrorReporter(self.logger, lambda statement: errors.labels(name, signal, statement).inc())
        self.groups = [StatementGroup(signal, g.context, g.statements, g.conditions, g.error_mode, self.reporter)
                       for g in config.groups(signal)]
        #: The same groups on the received bytes, when every one of them can run there (traces only).
        self.wire = WirePlan.of(self.groups) if signal == "traces" else None

    def _refused(self, exc: OttlRunError) -> RetryableError:
        return RetryableError(f"{self.settings.id}: batch refused (error_mode: propagate): {exc}")

    def _apply(self, batch: Any) -> Any:
        changed = False
        try:
            for group in self.groups:
                changed |= group.run(batch)
        except OttlRunError as exc:
            raise self._refused(exc) from None
        if not changed:
            unchanged(batch)
        return batch

    process_traces = process_metrics = process_logs = _apply

    async def consume_traces(self, batch: Any) -> None:
        data = wire_bytes(batch) if self.wire is not None else None
        if data is None:
            await super().consume_traces(batch)
            return
        try:
            edited = self.wire.run(data) if self.wire is not None else None
        except OttlRunError as exc:
            raise self._refused(exc) from None
        except DecodeError:  # not expected (the receiver parsed the same bytes): the parsed request still works
            await super().consume_traces(batch)
            return
        items = count_items(Signal.TRACES, batch)
        self._incoming.inc(items)
        self._outgoing.inc(items)  # statements change items, never their number
        if edited is None:
            unchanged(batch)
            await self.next.consume_traces(batch)
            return
        # Handed on as bytes: an exporter (or batch) takes them as they are, anything else gets them parsed once.
        await hand_on(self.next, WireBatch(Signal.TRACES, [edited], [items]))
