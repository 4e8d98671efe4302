"""Connector ``span_metrics``: traces in, RED metrics out on a timer."""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway import ComponentSettings, FlushingConnector, MetricsConsumer, WireBatch

from .aggregator import SpanAggregator
from .config import Config

__all__ = ["SpanMetricsConnector"]


class SpanMetricsConnector(FlushingConnector):
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> None:
        self.config = config
        self.spans = SpanAggregator(config)
        super().__init__(settings, self.spans, config.metrics_flush_interval, next_consumer)

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        self.spans.add(batch)
        self.consumed()

    async def consume_wire(self, batch: WireBatch) -> None:
        """Traces held as bytes: counted from the bytes, parsed only where they must be (``add_wire``)."""
        self.spans.add_wire(batch.data, batch.message)
        self.consumed()
