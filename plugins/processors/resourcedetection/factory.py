from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .processor import ResourceDetectionProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config,
                     next_consumer: Consumer) -> ResourceDetectionProcessor:
    return ResourceDetectionProcessor(settings, config, next_consumer)


factory = Factory(type="resourcedetection", kind=Kind.PROCESSOR, create_default_config=create_default_config,
                  create_traces=create_processor, create_metrics=create_processor, create_logs=create_processor,
                  stability=Stability.ALPHA, mutates_data=True)
