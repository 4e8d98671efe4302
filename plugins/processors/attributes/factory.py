from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .processor import AttributesProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> AttributesProcessor:
    return AttributesProcessor(settings, config, next_consumer)


factory = Factory(
    type="attributes",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    create_metrics=create_processor,
    create_logs=create_processor,
    stability=Stability.ALPHA,
    mutates_data=True,  # changes attributes in place; a batch no action touched keeps its wire bytes
)
