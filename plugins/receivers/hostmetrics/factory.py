from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, MetricsConsumer, Stability

from .config import Config
from .receiver import HostMetricsReceiver


def create_default_config() -> Config:
    return Config()


def create_metrics(settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> HostMetricsReceiver:
    return HostMetricsReceiver(settings, config, next_consumer)


factory = Factory(type="hostmetrics", kind=Kind.RECEIVER, create_default_config=create_default_config,
                  create_metrics=create_metrics, stability=Stability.ALPHA)
