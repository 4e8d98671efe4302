from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, MetricsConsumer, Stability

from .config import Config
from .receiver import PrometheusReceiver


def create_default_config() -> Config:
    return Config()


def create_metrics(settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> PrometheusReceiver:
    return PrometheusReceiver(settings, config, next_consumer)


factory = Factory(type="prometheus", kind=Kind.RECEIVER, create_default_config=create_default_config,
                  create_metrics=create_metrics, stability=Stability.ALPHA)
