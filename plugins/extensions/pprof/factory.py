from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability

from .config import Config
from .extension import Pprof


def create_default_config() -> Config:
    return Config()


def create_extension(settings: ComponentSettings, config: Config) -> Pprof:
    return Pprof(settings, config)


factory = Factory(
    type="pprof",
    kind=Kind.EXTENSION,
    create_default_config=create_default_config,
    create_extension=create_extension,
    stability=Stability.BETA,
)
