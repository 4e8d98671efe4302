from __future__ import annotations

from typing import Any

from gateway import ComponentSettings, Factory, Kind, OtlpGrpcExporter, Stability

from .config import Config
from .exporter import JaegerGrpcExporter


def create_default_config() -> Config:
    return Config()


def create_traces(settings: ComponentSettings, config: Config) -> Any:
    if config.protocol == "otlp":
        # Jaeger >= 1.35 takes OTLP itself: the otlp_grpc exporter does the whole job, with the same keys.
        return OtlpGrpcExporter(settings, config.otlp_grpc())
    return JaegerGrpcExporter(settings, config)


factory = Factory(
    type="jaeger",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_traces=create_traces,
    stability=Stability.ALPHA,
)
