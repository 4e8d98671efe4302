from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, MetricsConsumer, Stability

from .config import Config
from .processor import AlertsProcessor


def create_default_config() -> Config:
    return Config()


def create_metrics(settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> AlertsProcessor:
    return AlertsProcessor(settings, config, next_consumer)


factory = Factory(
    type="alerts",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_metrics=create_metrics,
    stability=Stability.ALPHA,
    mutates_data=False,  # it only reads the points its rules name
)
