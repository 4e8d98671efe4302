from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .exporter import LoadBalancingExporter


def create_default_config() -> Config:
    return Config()


def create_exporter(settings: ComponentSettings, config: Config) -> LoadBalancingExporter:
    return LoadBalancingExporter(settings, config)


factory = Factory(
    type="load_balancing",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_traces=create_exporter,
    create_metrics=create_exporter,
    create_logs=create_exporter,
    stability=Stability.ALPHA,
    aliases=("loadbalancing",),  # the Collector's name
)
