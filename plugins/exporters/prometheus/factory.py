from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .exporter import PrometheusExporter


def create_default_config() -> Config:
    return Config()


def create_exporter(settings: ComponentSettings, config: Config) -> PrometheusExporter:
    return PrometheusExporter(settings, config)


factory = Factory(
    type="prometheus",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_metrics=create_exporter,
    stability=Stability.BETA,
)
