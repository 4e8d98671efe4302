"""Prints batches to stderr for a human: a summary line, one line per item, or the full OTLP/JSON dump."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from gateway import Batch, BatchConsumer, ComponentSettings, Host, Signal, count_items, otlpjson

from .config import Config

_RESOURCE_FIELD = {Signal.TRACES: "resource_spans", Signal.METRICS: "resource_metrics", Signal.LOGS: "resource_logs"}


def _lines(signal: Signal, batch: Any) -> list[str]:
    lines = []
    if signal is Signal.TRACES:
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    duration_ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
                    lines.append(f"{s.name} trace_id={s.trace_id.hex()} span_id={s.span_id.hex()} "
                                 f"status={s.status.code} duration_ms={duration_ms:g}")
    elif signal is Signal.LOGS:
        for rl in batch.resource_logs:
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    body = r.body.string_value if r.body.HasField("string_value") else str(r.body).strip()
                    lines.append(f"{r.severity_text or r.severity_number} {body}")
    else:
        for rm in batch.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    data = m.WhichOneof("data")
                    count = len(getattr(m, data).data_points) if data else 0
                    lines.append(f"{m.name} {data} points={count}")
    return lines


class DebugExporter(BatchConsumer):
    def __init__(self, settings: ComponentSettings, config: Config, stream: TextIO | None = None) -> None:
        self.settings = settings
        self.config = config
        self.signal = settings.signal or Signal.TRACES
        self.stream = stream
        self._clock = time.monotonic  # replaceable in tests
        self._window = 0
        self._in_window = 0
        sent = settings.telemetry.root.exporter_sent[self.signal.item_name]
        self._sent = sent.labels(str(settings.id))

    async def start(self, host: Host) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def _sampled(self) -> bool:
        second = int(self._clock())
        if second != self._window:
            self._window, self._in_window = second, 0
        self._in_window += 1
        if self._in_window <= self.config.sampling_initial:
            return True
        return (self._in_window - self.config.sampling_initial) % self.config.sampling_thereafter == 0

    async def consume_batch(self, batch: Batch) -> None:
        items = count_items(self.signal, batch)
        self._sent.inc(items)
        if not self._sampled():
            return
        out = self.stream or sys.stderr
        resources = getattr(batch, _RESOURCE_FIELD[self.signal])
        header = {"exporter": str(self.settings.id), "signal": self.signal.value,
                  f"#{self.signal.item_name}": items, "#resources": len(resources)}
        out.write(json.dumps(header) + "\n")
        if self.config.verbosity == "normal":
            out.writelines(f"  {line}\n" for line in _lines(self.signal, batch))
        elif self.config.verbosity == "detailed":
            out.write(json.dumps(otlpjson.to_dict(batch), indent=2) + "\n")
        out.flush()
