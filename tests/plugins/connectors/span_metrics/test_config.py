from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.connectors import span_metrics
from plugins.connectors.span_metrics.config import (
    Config,
    Dimension,
    EventsConfig,
    ExemplarsConfig,
    ExponentialBuckets,
    HistogramConfig,
)
from plugins.connectors.span_metrics.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["connectors"]
    assert load(section["spanmetrics"]) == Config()
    full = load(section["span_metrics/full"])
    assert full.histogram.explicit is not None
    assert full.histogram.explicit.buckets == pytest.approx([0.0001, 0.001, 0.002, 0.006, 0.01, 0.1, 0.25])
    assert full.bucket_bounds() == (0.0001, 0.001, 0.002, 0.006, 0.01, 0.1, 0.25)
    assert replace(full, histogram=HistogramConfig()) == Config(
        dimensions=[Dimension("http.method", "GET"), Dimension("http.status_code")],
        exemplars=ExemplarsConfig(enabled=True, max_per_data_point=3),
        exclude_dimensions=["status.code"],
        aggregation_temporality="AGGREGATION_TEMPORALITY_DELTA",
        metrics_flush_interval=15.0, metrics_expiration=300.0, namespace="span.metrics",
        aggregation_cardinality_limit=100, resource_metrics_key_attributes=["service.name", "telemetry.sdk.language"],
        include_instrumentation_scope=["my.library"],
        events=EventsConfig(enabled=True, dimensions=[Dimension("exception.type")]))
    assert load(section["spanmetrics/exponential"]).histogram == HistogramConfig(
        exponential=ExponentialBuckets(max_size=64))


def test_defaults_are_the_collectors() -> None:
    config = Config()
    assert config.namespace == "traces.span.metrics"
    assert config.metrics_flush_interval == 60.0
    assert config.aggregation_temporality == "AGGREGATION_TEMPORALITY_CUMULATIVE"
    assert config.bucket_bounds() == (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000)
    assert load({"histogram": {"unit": "s"}}).bucket_bounds()[:3] == (0.002, 0.004, 0.006)


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"dimension": []})
    assert info.value.messages[0].startswith("dimension: unknown key; valid keys are: aggregation_cardinality_limit, ")


def test_invalid_values_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        load({"dimensions": [{"name": "span.kind"}, {"name": ""}], "exclude_dimensions": ["http.route"],
              "histogram": {"unit": "us", "explicit": {"buckets": ["2ms", "1ms"]}, "exponential": {"max_size": 1}},
              "aggregation_temporality": "DELTA", "metrics_flush_interval": 0,
              "aggregation_cardinality_limit": -1, "exemplars": {"max_per_data_point": 0}})
    assert info.value.messages == [
        "dimensions::0::name: duplicate dimension name 'span.kind'",
        "dimensions::1::name: must not be empty",
        "exclude_dimensions: 'http.route' is not one of service.name, span.name, span.kind, status.code",
        "histogram::unit: must be ms or s, got 'us'",
        "histogram: use either explicit or exponential buckets, not both",
        "histogram::explicit::buckets: must be strictly ascending",
        "histogram::exponential::max_size: must be >= 2",
        "exemplars::max_per_data_point: must be >= 1",
        "aggregation_temporality: must be AGGREGATION_TEMPORALITY_CUMULATIVE or AGGREGATION_TEMPORALITY_DELTA, "
        "got 'DELTA'",
        "metrics_flush_interval: must be > 0",
        "aggregation_cardinality_limit: must be >= 0 (0 = no limit)",
    ]


def test_registered_as_span_metrics_and_spanmetrics() -> None:
    registry = load_registry([span_metrics], entry_points=False)
    assert registry.get(Kind.CONNECTOR, "spanmetrics") is factory
    assert registry.get(Kind.CONNECTOR, "span_metrics") is factory
    assert list(factory.connectors) == [(Signal.TRACES, Signal.METRICS)]
