from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, MetricsConsumer, Signal, Stability

from .config import Config
from .connector import SpanMetricsConnector


def create_default_config() -> Config:
    return Config()


def create_connector(settings: ComponentSettings, config: Config,
                     next_consumer: MetricsConsumer) -> SpanMetricsConnector:
    return SpanMetricsConnector(settings, config, next_consumer)


factory = Factory(
    type="span_metrics",
    kind=Kind.CONNECTOR,
    create_default_config=create_default_config,
    connectors={(Signal.TRACES, Signal.METRICS): create_connector},
    stability=Stability.ALPHA,
    # `spanmetrics` is the Collector's name for this connector.
    aliases=("spanmetrics",),
)
