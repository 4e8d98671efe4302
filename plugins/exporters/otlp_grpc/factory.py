from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, OtlpGrpcExporter, Stability

from .config import Config


def create_default_config() -> Config:
    return Config()


def create_exporter(settings: ComponentSettings, config: Config) -> OtlpGrpcExporter:
    return OtlpGrpcExporter(settings, config)


factory = Factory(
    type="otlp_grpc",
    kind=Kind.EXPORTER,
    create_default_config=create_default_config,
    create_traces=create_exporter,
    create_metrics=create_exporter,
    create_logs=create_exporter,
    stability=Stability.BETA,
    # Collector users write `otlp`; the explicit name pairs with `otlp_http`.
    aliases=("otlp",),
)
