from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, LogsConsumer, Stability

from .config import Config
from .receiver import FilelogReceiver


def create_default_config() -> Config:
    return Config()


def create_logs(settings: ComponentSettings, config: Config, next_consumer: LogsConsumer) -> FilelogReceiver:
    return FilelogReceiver(settings, config, next_consumer)


factory = Factory(
    type="filelog",
    kind=Kind.RECEIVER,
    create_default_config=create_default_config,
    create_logs=create_logs,
    stability=Stability.ALPHA,
)
