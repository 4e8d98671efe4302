from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import ComponentSettings, Consumer, Factory, Kind, Signal, Stability

from .config import Config
from .connector import ForwardConnector


def _create(signal: Signal) -> Callable[[ComponentSettings, Config, Any], ForwardConnector]:
    def create(settings: ComponentSettings, config: Config, next_consumer: Consumer) -> ForwardConnector:
        return ForwardConnector(settings, config, next_consumer, signal)
    return create


factory = Factory(
    type="forward",
    kind=Kind.CONNECTOR,
    create_default_config=Config,
    connectors={(signal, signal): _create(signal) for signal in Signal},
    stability=Stability.BETA,
    # The pipelines it feeds may change batches in place (tail_sampling, redaction), while the pipeline it sits in
    # may also hand the same batch to connectors that read it later: so it is given its own copy.
    mutates_data=True,
)
