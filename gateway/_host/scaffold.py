"""``otelgw new-plugin NAME --kind KIND``: write a plugin package that installs, registers and passes its tests.

The package has the README example's layout: ``pyproject.toml`` (name, version, the dependency on otelgw and the
``otelgw.plugins`` entry point), ``src/otelgw_NAME/`` (the hook and one module with the config, the component and
its factory), ``tests/`` (driving the component with ``gateway.testing``) and a ``README.md`` with a config that
uses it. Each kind's component does one small real thing, so that its test can fail:

- processor: passes batches on, or drops them all with ``drop: true``;
- exporter: appends each batch to a file as a line of OTLP/JSON, through ``gateway.ExporterHelper``;
- receiver: emits a log record every ``interval``;
- connector: counts the spans of each resource into a metric.

The generated code imports only the public API (``gateway`` and ``gateway.testing``).
"""

from __future__ import annotations

import re
from pathlib import Path

from gateway.component import Kind

__all__ = ["KINDS", "write_plugin"]

KINDS = (Kind.PROCESSOR, Kind.EXPORTER, Kind.RECEIVER, Kind.CONNECTOR)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "The {name} {kind} for otelgw"
requires-python = ">=3.11"
dependencies = ["otelgw"]

[project.optional-dependencies]
test = ["pytest>=8"]

# otelgw finds the plugin through this entry point; its name is the plugin's name in `otelgw components`.
[project.entry-points."otelgw.plugins"]
{name} = "{module}"

[tool.pytest.ini_options]
testpaths = ["tests"]

# The rules otelgw itself is checked with; the generated code passes them as written.
[tool.ruff]
line-length = 120
target-version = "py311"
src = ["src", "tests"]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "UP", "B", "SIM", "RUF"]
'''

_INIT = '''\
"""The {name} {kind}: an otelgw plugin."""

from __future__ import annotations

from gateway import Factory, hookimpl

from .{kind} import factory


@hookimpl
def otelgw_component_factories() -> list[Factory]:
    return [factory]
'''

_PROCESSOR = '''\
"""The {name} processor: hands every batch on as it is, or drops them all with ``drop: true``.

Write your change in ``process_*``: a batch is an OTLP request message; loop over its resources and scopes, not
over every span, and set ``mutates_data=True`` on the factory once you change batches in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import Factory, Kind, Processor, Stability
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


@dataclass(frozen=True)
class Config:
    #: Drop every batch (the sender is still answered OK). An example setting: replace it with yours.
    drop: bool = False

    def validate(self) -> None:
        """Raise gateway.ConfigError("key: what is wrong") for what the types cannot say."""


class {cls}(Processor):
    config: Config

    def process_traces(self, batch: ExportTraceServiceRequest) -> ExportTraceServiceRequest | None:
        return None if self.config.drop else batch

    def process_metrics(self, batch: ExportMetricsServiceRequest) -> ExportMetricsServiceRequest | None:
        return None if self.config.drop else batch

    def process_logs(self, batch: ExportLogsServiceRequest) -> ExportLogsServiceRequest | None:
        return None if self.config.drop else batch


factory = Factory(
    "{name}", Kind.PROCESSOR, Config,
    create_traces={cls},
    create_metrics={cls},
    create_logs={cls},
    stability=Stability.DEVELOPMENT,
)
'''

_PROCESSOR_TEST = '''\
import asyncio

from gateway import Kind, Signal
from gateway.testing import Sink, make_logs, make_traces, settings_for

from {module}.processor import Config, {cls}


def run(config: Config, signal: Signal, batch) -> Sink:
    sink = Sink()
    settings = settings_for(Kind.PROCESSOR, "{name}", signal)
    processor = {cls}(settings, config, sink)
    asyncio.run(processor.consume_traces(batch) if signal is Signal.TRACES else processor.consume_logs(batch))
    return sink


def test_hands_batches_on() -> None:
    assert run(Config(), Signal.TRACES, make_traces(spans=3)).item_count(Signal.TRACES) == 3
    assert run(Config(), Signal.LOGS, make_logs(records=2)).item_count(Signal.LOGS) == 2


def test_drops_batches_when_told_to() -> None:
    assert run(Config(drop=True), Signal.TRACES, make_traces(spans=3)).batches[Signal.TRACES] == []
'''

_EXPORTER = '''\
"""The {name} exporter: appends every batch to ``path`` as one line of OTLP/JSON.

``send`` is all an exporter writes: ``gateway.ExporterHelper`` brings the sending queue, the retries with backoff
and the timeout (``sending_queue``, ``retry_on_failure``, ``timeout``, as in the Collector). ``send`` raises
``gateway.RetryableError`` for trouble that may pass and ``gateway.PermanentError`` for data the destination
refuses; anything else counts as retryable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gateway import (
    Batch,
    ComponentSettings,
    ConfigError,
    Duration,
    ExporterHelper,
    Factory,
    Host,
    Kind,
    QueueConfig,
    RetryConfig,
    Stability,
    otlpjson,
)


@dataclass(frozen=True)
class Config:
    #: The file to append to (required).
    path: str = ""
    #: How long one attempt at sending a batch may take.
    timeout: Duration = 5.0
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("path: must be set")


class {cls}:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.config = config
        self.helper = ExporterHelper(settings, self.send, timeout=config.timeout, queue=config.sending_queue,
                                     retry=config.retry_on_failure)

    async def start(self, host: Host) -> None:
        await self.helper.start(host)

    async def shutdown(self) -> None:
        await self.helper.shutdown()  # sends what is queued first

    async def consume_traces(self, batch: Batch) -> None:
        await self.helper.consume(batch)

    async def consume_metrics(self, batch: Batch) -> None:
        await self.helper.consume(batch)

    async def consume_logs(self, batch: Batch) -> None:
        await self.helper.consume(batch)

    async def send(self, batch: Batch) -> None:
        line = otlpjson.encode(batch) + b"\\n"
        await asyncio.to_thread(self._append, line)  # file I/O off the event loop

    def _append(self, line: bytes) -> None:
        with open(self.config.path, "ab") as out:
            out.write(line)


factory = Factory(
    "{name}", Kind.EXPORTER, Config,
    create_traces={cls},
    create_metrics={cls},
    create_logs={cls},
    stability=Stability.DEVELOPMENT,
)
'''

_EXPORTER_TEST = '''\
import asyncio
import json
from pathlib import Path

import pytest
from gateway import ConfigError, Kind, Signal
from gateway.testing import make_host, make_traces, settings_for

from {module}.exporter import Config, {cls}


def test_appends_each_batch_as_a_json_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    async def main() -> None:
        settings = settings_for(Kind.EXPORTER, "{name}", Signal.TRACES)
        exporter = {cls}(settings, Config(path=str(out)))
        await exporter.start(make_host())
        await exporter.consume_traces(make_traces(spans=3))
        await exporter.consume_traces(make_traces(spans=2))
        await exporter.shutdown()  # drains the sending queue

    asyncio.run(main())
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # The sending queue's consumers run concurrently: each batch is one line, in either order.
    assert sorted(len(line["resourceSpans"][0]["scopeSpans"][0]["spans"]) for line in lines) == [2, 3]


def test_a_path_is_required() -> None:
    with pytest.raises(ConfigError, match="path"):
        Config().validate()
'''

_RECEIVER = '''\
"""The {name} receiver: emits a log record with ``message`` every ``interval``.

A receiver produces batches and hands them to ``next_consumer``; ``consume_logs`` returning is the
acknowledgement (an exporter's queue or the backend has the data). Start servers or tasks in ``start`` and stop
them in ``shutdown``, which is also called on a receiver that never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from gateway import (
    ComponentSettings,
    ConfigError,
    ConsumeError,
    Duration,
    Factory,
    Host,
    Kind,
    LogsConsumer,
    Stability,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


@dataclass(frozen=True)
class Config:
    #: Time between two records.
    interval: Duration = 10.0
    #: The body of each record.
    message: str = "heartbeat"

    def validate(self) -> None:
        if self.interval <= 0:
            raise ConfigError("interval: must be > 0")


class {cls}:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: LogsConsumer) -> None:
        self.config = config
        self.next = next_consumer
        self.logger = settings.telemetry.logger
        self._task: asyncio.Task[None] | None = None

    async def start(self, host: Host) -> None:
        self._task = asyncio.create_task(self._run())

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def batch(self) -> ExportLogsServiceRequest:
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.add(key="service.name").value.string_value = "{name}"
        record = resource_logs.scope_logs.add().log_records.add()
        record.time_unix_nano = time.time_ns()
        record.body.string_value = self.config.message
        return request

    async def _run(self) -> None:
        while True:
            try:
                await self.next.consume_logs(self.batch())
            except ConsumeError as exc:  # refused downstream; the next tick makes a new record
                self.logger.warning("{name}: record refused: %s", exc)
            await asyncio.sleep(self.config.interval)


factory = Factory(
    "{name}", Kind.RECEIVER, Config,
    create_logs={cls},
    stability=Stability.DEVELOPMENT,
)
'''

_RECEIVER_TEST = '''\
import asyncio

import pytest
from gateway import ConfigError, Kind, Signal
from gateway.testing import Sink, make_host, settings_for

from {module}.receiver import Config, {cls}


def test_emits_a_record_every_interval() -> None:
    sink = Sink()

    async def main() -> None:
        settings = settings_for(Kind.RECEIVER, "{name}", Signal.LOGS)
        receiver = {cls}(settings, Config(interval=0.01, message="hi"), sink)
        await receiver.start(make_host())
        while sink.item_count(Signal.LOGS) < 3:
            await asyncio.sleep(0.01)
        await receiver.shutdown()

    asyncio.run(asyncio.wait_for(main(), 60))
    bodies = {{r.body.string_value for b in sink.batches[Signal.LOGS] for rl in b.resource_logs
              for sl in rl.scope_logs for r in sl.log_records}}
    assert bodies == {{"hi"}}


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="interval"):
        Config(interval=0).validate()
'''

_CONNECTOR = '''\
"""The {name} connector.

At the end of a traces pipeline, it counts the spans of each resource into the metric
``{name}.spans`` of a metrics pipeline.

A connector is an exporter of one pipeline and a receiver of others: it consumes one signal and hands another
to ``next_consumer``. Work per resource and scope, never per span.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gateway import ComponentSettings, Factory, Host, Kind, MetricsConsumer, Signal, Stability
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_DELTA


@dataclass(frozen=True)
class Config:
    #: The metric's name.
    metric: str = "{name}.spans"

    def validate(self) -> None:
        """Raise gateway.ConfigError("key: what is wrong") for what the types cannot say."""


class {cls}:
    def __init__(self, settings: ComponentSettings, config: Config, next_consumer: MetricsConsumer) -> None:
        self.config = config
        self.next = next_consumer

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume_traces(self, batch: ExportTraceServiceRequest) -> None:
        now = time.time_ns()
        out = ExportMetricsServiceRequest()
        for resource_spans in batch.resource_spans:
            resource_metrics = out.resource_metrics.add()
            resource_metrics.resource.CopyFrom(resource_spans.resource)
            metric = resource_metrics.scope_metrics.add().metrics.add(name=self.config.metric, unit="{{spans}}")
            metric.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_DELTA
            metric.sum.is_monotonic = True
            point = metric.sum.data_points.add(time_unix_nano=now)
            point.as_int = sum(len(scope_spans.spans) for scope_spans in resource_spans.scope_spans)
        await self.next.consume_metrics(out)


factory = Factory(
    "{name}", Kind.CONNECTOR, Config,
    connectors={{(Signal.TRACES, Signal.METRICS): {cls}}},
    stability=Stability.DEVELOPMENT,
)
'''

_CONNECTOR_TEST = '''\
import asyncio

from gateway import Kind, Signal
from gateway.testing import Sink, make_traces, settings_for

from {module}.connector import Config, {cls}


def test_counts_the_spans_of_each_resource() -> None:
    sink = Sink()
    settings = settings_for(Kind.CONNECTOR, "{name}", Signal.TRACES)
    connector = {cls}(settings, Config(), sink)
    asyncio.run(connector.consume_traces(make_traces(spans=7)))
    (batch,) = sink.batches[Signal.METRICS]
    (metric,) = batch.resource_metrics[0].scope_metrics[0].metrics
    assert (metric.name, metric.sum.data_points[0].as_int) == ("{name}.spans", 7)
'''

_README = '''\
# {dist}

The `{name}` {kind} for otelgw, written by `otelgw new-plugin`.

```sh
python -m pip install -e .          # next to otelgw
otelgw components | grep -w {name}  # registered
python -m pytest                    # its tests
```

```yaml
{config}
```
'''

_CONFIGS = {
    Kind.PROCESSOR: '''receivers:
  otlp:
processors:
  {name}: {{drop: false}}
exporters:
  debug:
service:
  pipelines:
    traces: {{receivers: [otlp], processors: [{name}], exporters: [debug]}}''',
    Kind.EXPORTER: '''receivers:
  otlp:
exporters:
  {name}: {{path: /tmp/{name}.jsonl}}
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [{name}]}}''',
    Kind.RECEIVER: '''receivers:
  {name}: {{interval: 10s, message: heartbeat}}
exporters:
  debug:
service:
  pipelines:
    logs: {{receivers: [{name}], exporters: [debug]}}''',
    Kind.CONNECTOR: '''receivers:
  otlp:
connectors:
  {name}:
exporters:
  debug:
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [{name}]}}
    metrics: {{receivers: [{name}], exporters: [debug]}}''',
}

_COMPONENT = {Kind.PROCESSOR: (_PROCESSOR, _PROCESSOR_TEST), Kind.EXPORTER: (_EXPORTER, _EXPORTER_TEST),
              Kind.RECEIVER: (_RECEIVER, _RECEIVER_TEST), Kind.CONNECTOR: (_CONNECTOR, _CONNECTOR_TEST)}


def write_plugin(name: str, kind: Kind, directory: Path | None = None) -> Path:
    """Write the package for component ``name`` of ``kind`` into ``directory`` (default ``./otelgw-<name>``).

    Raises ``ValueError`` for a name that cannot be a type name and module name, or a directory that is not
    empty: nothing is overwritten.
    """
    if not _NAME.match(name):
        raise ValueError(f"invalid plugin name {name!r}: use lower-case letters, digits and _, starting with a "
                         f"letter (it is the component's type name in the YAML)")
    if kind not in KINDS:
        raise ValueError(f"invalid kind {kind.value!r}: use one of {', '.join(k.value for k in KINDS)}")
    dist = "otelgw-" + name.replace("_", "-")
    target = directory if directory is not None else Path(dist)
    if target.exists() and any(target.iterdir()):
        raise ValueError(f"{target} exists and is not empty: choose another --dir")
    module = f"otelgw_{name}"
    fields = {"name": name, "kind": kind.value, "dist": dist, "module": module,
              "cls": "".join(part.title() for part in name.split("_")) + kind.value.title()}
    component, test = _COMPONENT[kind]
    files = {
        "pyproject.toml": _PYPROJECT,
        f"src/{module}/__init__.py": _INIT,
        f"src/{module}/{kind.value}.py": component,
        f"tests/test_{name}.py": test,
        "README.md": _README.replace("{config}", _CONFIGS[kind]),
    }
    for path, template in files.items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(template.format(**fields), encoding="utf-8")
    return target
