"""In-test components, so the core is tested without depending on any built-in plugin."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import Factory, Kind, Processor, Signal, hookimpl
from gateway._host.registry import load_registry
from gateway.component import count_items
from gateway.errors import ConfigError
from gateway.testing import Sink, make_metrics

EVENTS: list[str] = []


@dataclass(frozen=True)
class FakeConfig:
    #: free-form label used to tell instances apart
    tag: str = ""
    #: must be >= 0
    level: int = 0

    def validate(self) -> None:
        if self.level < 0:
            raise ConfigError("level: must be >= 0")


class FakeReceiver:
    def __init__(self, settings, config, next_consumer):
        self.settings, self.config, self.next = settings, config, next_consumer

    async def start(self, host):
        EVENTS.append(f"start receiver {self.settings.id} {self.settings.signal.value}")

    async def shutdown(self):
        EVENTS.append(f"stop receiver {self.settings.id} {self.settings.signal.value}")

    async def push(self, batch):
        from gateway.component import consume

        await consume(self.next, self.settings.signal, batch)


class FakeExporter(Sink):
    def __init__(self, settings, config):
        super().__init__()
        self.settings = settings

    async def start(self, host):
        EVENTS.append(f"start exporter {self.settings.id} {self.settings.signal.value}")

    async def shutdown(self):
        EVENTS.append(f"stop exporter {self.settings.id} {self.settings.signal.value}")


class TagProcessor(Processor):
    """Mutates spans: appends its tag to every span name (so fan-out copies are observable)."""

    async def start(self, host):
        EVENTS.append(f"start processor {self.settings.id}")

    async def shutdown(self):
        EVENTS.append(f"stop processor {self.settings.id}")

    def process_traces(self, batch):
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.name += self.config.tag
        return batch


class CountConnector:
    """traces → metrics: one gauge point per batch holding the span count."""

    def __init__(self, settings, config, next_consumer):
        self.settings, self.next = settings, next_consumer

    async def start(self, host):
        EVENTS.append(f"start connector {self.settings.id}")

    async def shutdown(self):
        EVENTS.append(f"stop connector {self.settings.id}")

    async def consume_traces(self, batch):
        metrics = make_metrics(points=1, name="span_count")
        metrics.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0].as_int = count_items(
            Signal.TRACES, batch)
        await self.next.consume_metrics(metrics)


def _all(fn):
    return {"create_traces": fn, "create_metrics": fn, "create_logs": fn}


FACTORIES = [
    Factory("fakerecv", Kind.RECEIVER, FakeConfig, **_all(FakeReceiver)),
    Factory("fakeexp", Kind.EXPORTER, FakeConfig, **_all(FakeExporter), aliases=("fakeexp_alias",)),
    Factory("tag", Kind.PROCESSOR, FakeConfig, create_traces=TagProcessor, mutates_data=True),
    Factory("count", Kind.CONNECTOR, FakeConfig, connectors={(Signal.TRACES, Signal.METRICS): CountConnector}),
]

fake_plugin = SimpleNamespace(otelgw_component_factories=hookimpl(lambda: FACTORIES))


@pytest.fixture
def registry():
    return load_registry([fake_plugin], entry_points=False)


@pytest.fixture
def events() -> list[str]:
    EVENTS.clear()
    return EVENTS


def find(graph: Any, kind: Kind, cid: str, signal: Signal | None = None) -> Any:
    return graph.find(kind, cid, signal)
