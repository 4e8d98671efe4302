from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .exporter import OtlpHttpExporter


def create_default_config() -> Config:
    return Config()


def create_exporter(settings: ComponentSettings, config: Config) -> OtlpHttpExporter:
    return OtlpHttpExporter(settings, config)


factory = Factory(
    type="otlp_http",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_traces=create_exporter,
    create_metrics=create_exporter,
    create_logs=create_exporter,
    stability=Stability.BETA,
    # `otlphttp` is the Collector's name for this exporter.
    aliases=("otlphttp",),
)
