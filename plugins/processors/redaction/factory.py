from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .processor import RedactionProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> RedactionProcessor:
    return RedactionProcessor(settings, config, next_consumer)


factory = Factory(
    type="redaction",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    create_metrics=create_processor,
    create_logs=create_processor,
    stability=Stability.ALPHA,
    mutates_data=True,  # it rewrites and removes attributes of the batches it is handed
)
