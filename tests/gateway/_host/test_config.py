from __future__ import annotations

import pytest
import yaml

from gateway._host.config import PipelineID, build_config
from gateway.component import ComponentID, Kind, Signal
from gateway.errors import ConfigError


def load(registry, text: str):
    return build_config(yaml.safe_load(text), registry)


def errors_of(registry, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(registry, text)
    return info.value.messages


VALID = """
receivers:
  fakerecv:
  fakerecv/second: {tag: b}
processors:
  tag: {tag: "-x"}
exporters:
  fakeexp: {level: 2}
service:
  pipelines:
    traces: {receivers: [fakerecv, fakerecv/second], processors: [tag], exporters: [fakeexp]}
    logs/audit: {receivers: [fakerecv], exporters: [fakeexp]}
"""


def test_valid_config_builds_typed_components(registry):
    config = load(registry, VALID)
    exporter = config.get(Kind.EXPORTER, ComponentID("fakeexp"))
    assert exporter.config.level == 2 and exporter.factory.type == "fakeexp"
    assert config.get(Kind.RECEIVER, ComponentID("fakerecv", "second")).config.tag == "b"
    assert set(config.pipelines) == {PipelineID(Signal.TRACES), PipelineID(Signal.LOGS, "audit")}
    assert config.pipelines[PipelineID(Signal.TRACES)].receivers == [ComponentID("fakerecv"),
                                                                     ComponentID("fakerecv", "second")]


def test_alias_selects_factory(registry):
    config = load(registry, VALID.replace("fakeexp", "fakeexp_alias"))
    assert config.get(Kind.EXPORTER, ComponentID("fakeexp_alias")).factory.type == "fakeexp"


def test_all_errors_come_back_together_with_paths(registry):
    messages = errors_of(registry, """
receivers:
  fakerecv: {tagg: 1}
  nosuch:
processors:
  tag: {level: -1}
exporters:
  fakeexp:
extra: 1
service:
  telemetry: {logs: {level: loud}}
  pipelines:
    traces: {receivers: [fakerecv, ghost], processors: [tag, missing], exporters: []}
    metrics: {receivers: [fakerecv], processors: [tag], exporters: [fakeexp], other: 1}
    spans: {receivers: [fakerecv], exporters: [fakeexp]}
""")
    assert messages == [
        "extra: unknown top-level key; valid keys are: "
        "receivers, processors, exporters, connectors, extensions, service",
        "receivers::fakerecv::tagg: unknown key; valid keys are: level, tag",
        "receivers::nosuch: unknown receiver type 'nosuch'; valid types are: fakerecv",
        "processors::tag::level: must be >= 0",
        "service::pipelines::metrics::other: unknown key; valid keys are: receivers, processors, exporters",
        "service::pipelines::spans: unknown signal 'spans'; valid signals are: logs, metrics, traces",
        "service::pipelines::traces: must have at least one exporter",
        "service::pipelines::traces::receivers: references receiver 'ghost', which is not configured; "
        "configured receivers: fakerecv, nosuch",
        "service::pipelines::traces::processors: references processor 'missing', which is not configured; "
        "configured processors: tag",
        "service::pipelines::metrics::processors: processor 'tag' does not support metrics; it supports: traces",
        "service::telemetry::logs::level: must be one of debug, info, warn, error, got 'loud'",
    ]


def test_missing_pipelines_and_bad_ids(registry):
    assert errors_of(registry, "receivers: {'/x': {}}\nservice: {}") == [
        "receivers::/x: invalid component id '/x': expected 'type' or 'type/name'",
        "service::pipelines: at least one pipeline is required",
    ]


def test_pipeline_without_receivers(registry):
    assert errors_of(registry, """
exporters: {fakeexp: }
service: {pipelines: {traces: {exporters: [fakeexp]}}}
""") == ["service::pipelines::traces: must have at least one receiver"]


def test_connector_must_be_used_on_both_sides(registry):
    assert errors_of(registry, """
receivers: {fakerecv: }
exporters: {fakeexp: }
connectors: {count: }
service:
  pipelines:
    traces: {receivers: [fakerecv], exporters: [count]}
    logs: {receivers: [fakerecv], exporters: [fakeexp]}
""") == ["connectors::count: a connector must be used as an exporter in one pipeline and a receiver in another"]


def test_connector_signal_pair_must_be_supported(registry):
    assert errors_of(registry, """
receivers: {fakerecv: }
exporters: {fakeexp: }
connectors: {count: }
service:
  pipelines:
    logs: {receivers: [fakerecv], exporters: [count]}
    traces: {receivers: [count], exporters: [fakeexp]}
""") == ["connectors::count: no supported signal pair in its use; it supports: traces->metrics"]


def test_unknown_extension_reference(registry):
    assert errors_of(registry, """
receivers: {fakerecv: }
exporters: {fakeexp: }
service:
  extensions: [health_check]
  pipelines: {traces: {receivers: [fakerecv], exporters: [fakeexp]}}
""") == ["service::extensions::0: references extension 'health_check', which is not configured"]
