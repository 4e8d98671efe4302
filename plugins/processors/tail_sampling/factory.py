from __future__ import annotations

from gateway import ComponentSettings, Factory, Kind, Stability, TracesConsumer

from .config import Config
from .processor import TailSamplingProcessor


def create_default_config() -> Config:
    return Config()


def create_processor(settings: ComponentSettings, config: Config,
                     next_consumer: TracesConsumer) -> TailSamplingProcessor:
    return TailSamplingProcessor(settings, config, next_consumer)


factory = Factory(
    type="tail_sampling",
    kind=Kind.PROCESSOR,
    create_default_config=create_default_config,
    create_traces=create_processor,
    stability=Stability.ALPHA,
    # Kept spans are stamped with the policy attribute, but on requests this processor assembles itself from
    # its own serialized copies: the batches it is handed are never changed, so a fan-out need not copy them.
    mutates_data=False,
)
