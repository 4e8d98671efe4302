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
    # It hands on the batch it was given. When a pipeline it feeds may change batches in place (redaction), the
    # pipeline it sits in may also hand the same batch to consumers that read it later, so it is given its own
    # copy then; when none does (tail_sampling, batch), it shares the batch (the graph decides, per use).
    mutates_data=True,
    passes_batches_on=True,
)
