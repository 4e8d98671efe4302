from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import ComponentSettings, Consumer, Factory, Kind, SharedComponent, SharedComponents, Signal, Stability

from .config import Config
from .receiver import OtlpReceiver

#: One receiver (one gRPC and one HTTP server) per configured id, whichever signals it serves.
_receivers: SharedComponents[OtlpReceiver] = SharedComponents()

Shared = SharedComponent[OtlpReceiver]


def create_default_config() -> Config:
    return Config()


def _creator(signal: Signal) -> Callable[[ComponentSettings, Config, Any], Shared]:
    """create_<signal>: every signal of one receiver id gets the same object, which records its consumer."""

    def create(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> Shared:
        shared = _receivers.get_or_create((settings.id, id(config)), lambda: OtlpReceiver(settings, config))
        shared.component.set_consumer(signal, next_consumer)
        return shared

    create.__name__ = f"create_{signal.value}"
    return create


factory = Factory(
    type="otlp",
    kind=Kind.RECEIVER,
    create_default_config=create_default_config,
    create_traces=_creator(Signal.TRACES),
    create_metrics=_creator(Signal.METRICS),
    create_logs=_creator(Signal.LOGS),
    stability=Stability.BETA,
)
