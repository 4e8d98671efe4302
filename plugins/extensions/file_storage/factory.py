from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .extension import FileStorage


def create_default_config() -> Config:
    return Config()


def create_extension(settings: ComponentSettings, config: Config) -> FileStorage:
    return FileStorage(settings, config)


factory = Factory(
    type="file_storage",
    kind=Kind.EXTENSION,
    create_default_config=create_default_config,
    create_extension=create_extension,
    stability=Stability.BETA,
)
