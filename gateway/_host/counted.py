"""``Counted``: counts the items of every batch it passes on, for the items a connector consumes and produces.

Receivers, processors and exporters count their own items (the Collector's ``otelcol_receiver_*``,
``otelcol_processor_*`` and ``otelcol_exporter_*`` families). A connector is both the end of one pipeline and the
start of others, and the Collector counts it from outside, as ``otelcol_connector_consumed_items`` and
``otelcol_connector_produced_items``. The graph does the same: it puts a ``Counted`` in front of each connector in
the fan-outs that feed it, and one between the connector and the fan-out it feeds, so every connector is counted
without any code of its own, and ``top``, the status page and zpages show its items in and out.

The cost is one envelope walk per batch (``count_items``; a wire batch knows its count) on connectors only.
"""

from __future__ import annotations

from typing import Any

from gateway.component import Signal, count_items
from gateway.wirebytes import WireBatch

__all__ = ["Counted", "counted"]


class Counted:
    """Passes each batch on to ``target`` after adding its items to ``counter`` (a counter child)."""

    __slots__ = ("counter", "signal", "target")

    def __init__(self, target: Any, signal: Signal, counter: Any) -> None:
        self.target = target
        self.signal = signal
        self.counter = counter

    @property
    def mutates_data(self) -> bool:
        return bool(getattr(self.target, "mutates_data", False))

    async def consume_traces(self, batch: Any) -> None:
        self.counter.inc(count_items(Signal.TRACES, batch))
        await self.target.consume_traces(batch)

    async def consume_metrics(self, batch: Any) -> None:
        self.counter.inc(count_items(Signal.METRICS, batch))
        await self.target.consume_metrics(batch)

    async def consume_logs(self, batch: Any) -> None:
        self.counter.inc(count_items(Signal.LOGS, batch))
        await self.target.consume_logs(batch)


class _CountedWire(Counted):
    """For a target that takes wire batches (``consume_wire``): they reach it as they are, counted."""

    __slots__ = ()

    async def consume_wire(self, batch: WireBatch) -> None:
        self.counter.inc(batch.items)
        await self.target.consume_wire(batch)


def counted(target: Any, signal: Signal, counter: Any) -> Counted:
    """A ``Counted`` in front of ``target`` with exactly the methods it has: ``consume_wire`` only when the target
    takes wire batches (``gateway.wirebytes.hand_on`` looks for it), so what reaches the target is unchanged."""
    kind = _CountedWire if getattr(target, "consume_wire", None) is not None else Counted
    return kind(target, signal, counter)
