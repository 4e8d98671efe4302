"""``service::telemetry`` in the shapes the Collector documents today, table-driven: what loads (and what the
gateway then does with it), what warns, and what is refused with its key path."""

from __future__ import annotations

from typing import Any

import pytest

from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway.errors import ConfigError

PIPELINES = {"receivers": {"otlp": None}, "exporters": {"debug": None},
             "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}}}}


def load(telemetry: Any) -> Any:
    raw = {**PIPELINES, "service": {**PIPELINES["service"], "telemetry": telemetry}}
    return build_config(raw, load_registry())


VALID = [
    # the Helm chart's and the Collector docs' pull reader
    ({"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 8888}}}}]}},
     ["0.0.0.0:8888"], 0),
    # the legacy address, and the default without either
    ({"metrics": {"address": "127.0.0.1:9999", "level": "detailed"}}, ["127.0.0.1:9999"], 0),
    (None, ["localhost:8888"], 0),
    ({"metrics": {"level": "none"}}, [], 0),
    # a periodic OTLP reader, headers as the schema's list, interval in milliseconds
    ({"metrics": {"readers": [{"periodic": {"interval": 60000, "exporter": {"otlp": {
        "protocol": "http/protobuf", "endpoint": "https://metrics.example:4318",
        "headers": [{"name": "api-key", "value": "x"}]}}}}]}}, [], 1),
    ({"metrics": {"readers": [
        {"pull": {"exporter": {"prometheus": {"host": "::1", "port": 0}}}},
        {"periodic": {"exporter": {"otlp": {"protocol": "grpc", "endpoint": "collector:4317", "insecure": True}}}}]}},
     ["[::1]:0"], 1),
    # resource, logs and traces as the Collector writes them
    ({"resource": {"service.name": "edge", "service.instance.id": None},
      "logs": {"level": "warn", "encoding": "console", "output_paths": ["stdout"], "error_output_paths": ["stderr"],
               "sampling": {"enabled": True, "tick": "10s", "initial": 10, "thereafter": 100},
               "initial_fields": {"cluster": "eu"}, "development": False, "disable_caller": True},
      "traces": {"level": "basic", "propagators": ["tracecontext", "b3"]}}, ["localhost:8888"], 0),
]


@pytest.mark.parametrize(("telemetry", "pulls", "periodic"), VALID)
def test_collector_shapes_load(telemetry, pulls, periodic):
    config = load(telemetry)
    assert config.telemetry.metrics.pull_addresses == pulls
    assert len(config.telemetry.metrics.periodic) == periodic


@pytest.mark.parametrize(
    ("telemetry", "warning"),
    [
        ({"traces": {"processors": [{"batch": {"exporter": {"otlp": {"endpoint": "x:4317"}}}}]}},
         "service::telemetry::traces: the gateway does not trace itself; this section is ignored"),
        ({"logs": {"processors": [{"batch": {"exporter": {"otlp": {"endpoint": "x:4317"}}}}]}},
         "service::telemetry::logs::processors: the gateway does not export its own logs over OTLP"),
        ({"metrics": {"address": ":8888",
                      "readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 1}}}}]}},
         "service::telemetry::metrics::address: ignored because readers are given"),
    ],
)
def test_accepted_with_a_warning(telemetry, warning):
    assert any(w.startswith(warning) for w in load(telemetry).warnings)


@pytest.mark.parametrize(
    ("telemetry", "messages"),
    [
        (5, ["service::telemetry: expected a mapping, got int 5"]),
        ({"metrics": {"readers": {"pull": {}}}},
         ["service::telemetry::metrics::readers: expected a list, got dict {'pull': {}}"]),
        ({"metrics": {"readers": [{}]}},
         ["service::telemetry::metrics::readers::0::pull: a reader is either pull or periodic; give exactly one of "
          "them"]),
        ({"metrics": {"readers": [{"pull": {"exporter": {"otlp": {}}}}]}},
         ["service::telemetry::metrics::readers::0::pull::exporter::otlp: unknown key; valid keys are: prometheus",
          "service::telemetry::metrics::readers::0::pull::exporter::prometheus: a pull reader needs a prometheus "
          "exporter ({host, port})"]),
        ({"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 70000}}}}]}},
         ["service::telemetry::metrics::readers::0::pull::exporter::prometheus::port: "
          "must be between 0 and 65535, got 70000"]),
        ({"metrics": {"readers": [{"periodic": {"interval": 0, "exporter": {"otlp": {"protocol": "udp"}}}}]}},
         ["service::telemetry::metrics::readers::0::periodic::exporter::otlp::protocol: must be one of grpc, "
          "http/protobuf, http/json, got 'udp'",
          "service::telemetry::metrics::readers::0::periodic::exporter::otlp::endpoint: required",
          "service::telemetry::metrics::readers::0::periodic::interval: must be > 0 milliseconds, got 0"]),
        ({"metrics": {"level": "verbose"}},
         ["service::telemetry::metrics::level: must be one of none, basic, normal, detailed, got 'verbose'"]),
        ({"logs": {"encoding": "xml", "output_paths": []}},
         ["service::telemetry::logs::encoding: must be json or console, got 'xml'",
          "service::telemetry::logs::output_paths: give at least one of stderr, stdout or a file path"]),
    ],
)
def test_malformed_shapes_are_refused_with_their_paths(telemetry, messages):
    with pytest.raises(ConfigError) as info:
        load(telemetry)
    assert info.value.messages == messages
