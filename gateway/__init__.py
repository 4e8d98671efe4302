"""otelgw: a telemetry gateway in the spirit of the OpenTelemetry Collector.

The public surface for plugin authors is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

from gateway.component import (
    Batch,
    ComponentID,
    ComponentSettings,
    Factory,
    Kind,
    Signal,
    Stability,
    consume,
    count_items,
)
from gateway.configtypes import Duration
from gateway.errors import (
    ConfigError,
    ConsumeError,
    OtelgwError,
    OverloadedError,
    PermanentError,
    PluginError,
    RetryableError,
    SkipBatchError,
    TooLargeError,
)
from gateway.helpers.exporter import ExporterHelper, QueueConfig, RetryConfig
from gateway.helpers.processor import Processor
from gateway.helpers.shared import SharedComponents
from gateway.hookspecs import hookimpl
from gateway.host import Host, Status
from gateway.service import Service

__all__ = [
    "Batch",
    "ComponentID",
    "ComponentSettings",
    "ConfigError",
    "ConsumeError",
    "Duration",
    "ExporterHelper",
    "Factory",
    "Host",
    "Kind",
    "OtelgwError",
    "OverloadedError",
    "PermanentError",
    "PluginError",
    "Processor",
    "QueueConfig",
    "RetryConfig",
    "RetryableError",
    "Service",
    "SharedComponents",
    "Signal",
    "SkipBatchError",
    "Stability",
    "Status",
    "TooLargeError",
    "consume",
    "count_items",
    "hookimpl",
]
