"""Base class for processors that transform one batch at a time; counts items in and out, honours skips.

A plugin author writes only the transform::

    class UpperCaseNames(Processor):
        def process_traces(self, batch):
            for rs in batch.resource_spans: ...
            return batch          # or None / raise SkipBatchError to drop it

``process_*`` may be a plain function or a coroutine function. The factory decides which signals are offered.

A processor that can do its work on a request's serialized bytes (``gateway.wirebytes.WireBatch``: the otlp
receiver hands requests on as bytes when it could check them without a parse) also defines ``consume_wire``
as ``await self.run_wire(batch, self.process_wire)``, where ``process_wire`` returns the result as a
``WireBatch`` (new bytes for a change: a ``WireBatch`` itself never changes), None to drop it, or
``NotImplemented`` for a batch it cannot do as bytes, which is then parsed and given to ``process_<signal>``.
Processors without ``consume_wire`` get the parsed message, as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.component import Batch, ComponentSettings, Consumer, Signal, consume, count_items
from gateway.errors import SkipBatchError
from gateway.wirebytes import WireBatch, attached, hand_on

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["Processor"]


class Processor:
    def __init__(self, settings: ComponentSettings, config: Any, next_consumer: Consumer) -> None:
        self.settings = settings
        self.config = config
        #: Has the ``consume_<signal>`` method of the signal this processor was created for.
        self.next: Any = next_consumer
        self.logger = settings.telemetry.logger
        root, name = settings.telemetry.root, str(settings.id)
        signal = (settings.signal or Signal.TRACES).value
        self._incoming = root.processor_incoming.labels(name, signal)
        self._outgoing = root.processor_outgoing.labels(name, signal)

    async def start(self, host: Host) -> None:
        """Override for set-up that needs the host (extensions) or starts background tasks."""

    async def shutdown(self) -> None:
        """Override to flush state; the next consumer is still running when this is awaited."""

    def process_traces(self, batch: Any) -> Any:
        return batch

    def process_metrics(self, batch: Any) -> Any:
        return batch

    def process_logs(self, batch: Any) -> Any:
        return batch

    async def _run(self, signal: Signal, batch: Batch, process: Any, forward: Any) -> None:
        self._incoming.inc(count_items(signal, batch))
        try:
            result = process(batch)
            if inspect.isawaitable(result):
                result = await result
        except SkipBatchError:
            return
        if result is None:
            return
        self._outgoing.inc(count_items(signal, result))
        await forward(result)

    async def run_wire(self, batch: WireBatch, process: Callable[[WireBatch], Any]) -> None:
        """``consume_wire`` of a processor that works on bytes: see the module docstring."""
        try:
            result = process(batch)
        except SkipBatchError:
            self._incoming.inc(batch.items)
            return
        except Exception:  # counted in, as process_<signal> would have been
            self._incoming.inc(batch.items)
            raise
        if result is NotImplemented:  # parsed: a copy of its own, with the bytes for byte scanners to read
            message = batch.fresh()
            with attached(message, batch.data):
                await consume(self, batch.signal, message)
            return
        self._incoming.inc(batch.items)
        if result is None:
            return
        self._outgoing.inc(result.items)
        await hand_on(self.next, result)

    async def consume_traces(self, batch: Any) -> None:
        await self._run(Signal.TRACES, batch, self.process_traces, self.next.consume_traces)

    async def consume_metrics(self, batch: Any) -> None:
        await self._run(Signal.METRICS, batch, self.process_metrics, self.next.consume_metrics)

    async def consume_logs(self, batch: Any) -> None:
        await self._run(Signal.LOGS, batch, self.process_logs, self.next.consume_logs)
