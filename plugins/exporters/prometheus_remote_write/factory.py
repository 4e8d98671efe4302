from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .exporter import RemoteWriteExporter


def create_default_config() -> Config:
    return Config()


def create_exporter(settings: ComponentSettings, config: Config) -> RemoteWriteExporter:
    return RemoteWriteExporter(settings, config)


factory = Factory(
    type="prometheus_remote_write",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_metrics=create_exporter,
    stability=Stability.BETA,
    # `prometheusremotewrite` is the Collector's name for this exporter.
    aliases=("prometheusremotewrite",),
)
