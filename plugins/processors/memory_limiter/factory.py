from __future__ import annotations

from gateway import ComponentSettings, Consumer, Factory, Kind, Stability

from .config import Config
from .processor import MemoryLimiterProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> MemoryLimiterProcessor:
    return MemoryLimiterProcessor(settings, config, next_consumer)


factory = Factory(
    type="memory_limiter",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    create_metrics=create_processor,
    create_logs=create_processor,
    stability=Stability.BETA,
)
