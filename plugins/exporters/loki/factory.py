from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .exporter import LokiExporter


def create_default_config() -> Config:
    return Config()


def create_logs(settings: ComponentSettings, config: Config) -> LokiExporter:
    return LokiExporter(settings, config)


factory = Factory(
    type="loki",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_logs=create_logs,
    stability=Stability.ALPHA,
)
