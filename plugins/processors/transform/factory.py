from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .processor import TransformProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> TransformProcessor:
    return TransformProcessor(settings, config, next_consumer)


factory = Factory(
    type="transform",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    create_metrics=create_processor,
    create_logs=create_processor,
    stability=Stability.ALPHA,
    mutates_data=True,  # statements change items in place; a batch no statement touched keeps its wire bytes
)
