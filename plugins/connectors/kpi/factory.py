from __future__ import annotations

from gateway import Factory, Kind, Signal, Stability

from .config import Config
from .connector import create


def create_default_config() -> Config:
    return Config()


factory = Factory(
    type="kpi",
    kind=Kind.CONNECTOR,
    create_default_config=create_default_config,
    connectors={(Signal.TRACES, Signal.METRICS): create, (Signal.LOGS, Signal.METRICS): create},
    stability=Stability.ALPHA,
    # Its KPIs add up events of many traces (an up/down counter, a ratio): with --workers N, one worker keeps them.
    single_owner=True,
)
