from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .metadata import MetadataBatcher, WithSender
from .processor import BatchProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config,
                     next_consumer: Consumer) -> BatchProcessor | MetadataBatcher:
    if config.metadata_keys:
        return MetadataBatcher(settings, config, next_consumer)
    assert settings.signal is not None
    return BatchProcessor(settings, config, WithSender(next_consumer, settings.signal, None))


factory = Factory(
    type="batch",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    create_metrics=create_processor,
    create_logs=create_processor,
    stability=Stability.BETA,
    mutates_data=False,  # it merges into batches it owns and never changes an item it was handed
)
