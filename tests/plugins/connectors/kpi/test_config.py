from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway._host.registry import load_registry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.connectors import kpi
from plugins.connectors.kpi.config import Config, Kpi, Label, Match
from plugins.connectors.kpi.factory import factory

TESTDATA = Path(__file__).parent / "testdata"


def load(data: object) -> Config:
    config = decode(factory.create_default_config(), data)  # type: ignore[arg-type]
    errors = validate_tree(config)
    if errors:
        raise ConfigError(errors)
    return config  # type: ignore[no-any-return]


def test_testdata_gives_exact_configs() -> None:
    section = yaml.safe_load((TESTDATA / "config.yaml").read_text())["connectors"]
    assert load(section["kpi"]) == Config()
    assert load(section["kpi/full"]) == Config(
        metrics_flush_interval=5.0, aggregation_cardinality_limit=50, metrics_expiration=3600.0,
        resource_attributes={"service.name": "kpi-gateway"},
        kpis=[
            Kpi(name="shop.orders", description="Orders placed.", unit="{order}", match=Match(
                span_names=["POST /orders"], span_kinds=["server"], status_codes=["ok", "unset"],
                attributes={"http.response.status_code": {"lt": 400}, "payment.method": {"one_of": ["card", "paypal"]}},
                resource={"deployment.environment.name": "prod"}, duration_ms={"lte": 2000}),
                labels=[Label(name="method", attribute="payment.method", default="other")]),
            Kpi(name="shop.queue.wait", type="ratio", unit="1", window=600.0, signal="logs",
                match=Match(event_names=["order.shipped"], min_severity="INFO"),
                numerator=Match(attributes={"late": True}), labels=[Label(name="carrier", numerator_only=True)],
                cardinality_limit=10),
        ])


def test_unknown_key_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        load({"kpis": [{"name": "x", "match": {"span_name": ["a"]}}]})
    assert info.value.messages == [
        "kpis::0::match::span_name: unknown key; valid keys are: attributes, duration_ms, event_names, "
        "min_severity, resource, span_kinds, span_name_regex, span_names, status_codes"]


def test_invalid_values_are_reported_together_with_their_paths() -> None:
    with pytest.raises(ConfigError) as info:
        load({"aggregation_cardinality_limit": 0, "kpis": [
            {"name": "", "type": "sum", "signal": "metrics"},
            {"name": "h", "type": "histogram", "buckets": [2, 1], "value": "duration", "unit": "min"},
            {"name": "u", "type": "updown", "increment": {"span_kinds": ["serverside"]}},
            {"name": "r", "type": "ratio", "window": 0, "match": {
                "status_codes": ["failed"], "min_severity": "LOUD", "span_name_regex": "(",
                "attributes": {"a": {"between": [1, 2]}, "b": {"gt": "x"}, "c": {}, "d": [1]},
                "duration_ms": {"eq": 5}}},
            {"name": "g", "type": "gauge", "labels": [{"name": "x"}, {"name": "x", "numerator_only": True}]},
            {"name": "h", "type": "counter"},
        ]})
    assert info.value.messages == [
        "kpis::0::name: must not be empty",
        "kpis::0::type: must be one of counter, histogram, gauge, updown, ratio, got 'sum'",
        "kpis::0::signal: must be spans or logs, got 'metrics'",
        "kpis::1::unit: must be ms or s when value is duration",
        "kpis::1::buckets: a histogram needs ascending bucket bounds",
        "kpis::2::increment::span_kinds: 'serverside' is not one of unspecified, internal, server, client, "
        "producer, consumer",
        "kpis::2::increment: an updown KPI needs both increment and decrement",
        "kpis::3::match::status_codes: 'failed' is not one of unset, ok, error",
        "kpis::3::match::min_severity: must be a number 1-24 or one of TRACE, DEBUG, INFO, WARN, WARNING, ERROR, "
        "FATAL, got 'LOUD'",
        "kpis::3::match::attributes::a::between: unknown operator; valid ones are: eq, ne, one_of, none_of, exists, "
        "gt, gte, lt, lte, regex",
        "kpis::3::match::attributes::b::gt: expected a number, got 'x'",
        "kpis::3::match::attributes::c: an empty condition matches nothing; give at least one operator",
        "kpis::3::match::attributes::d: expected a value or a mapping of eq, ne, one_of, none_of, exists, gt, gte, "
        "lt, lte, regex",
        "kpis::3::match::duration_ms::eq: unknown operator; valid ones are: gt, gte, lt, lte",
        "kpis::3::match::span_name_regex: invalid regular expression: missing ), unterminated subpattern at "
        "position 0",
        "kpis::3::numerator: a ratio KPI needs a numerator",
        "kpis::3::window: must be > 0",
        "kpis::4::value: a gauge needs the attribute whose last value it shows",
        "kpis::4::labels::1::name: duplicate label 'x'",
        "kpis::4::labels::1::numerator_only: only ratios have a numerator",
        "kpis::5::name: 'h' is already a histogram with unit 'min'; KPIs may share a name only with the same type, "
        "unit and buckets",
        "aggregation_cardinality_limit: must be >= 1",
    ]


def test_the_default_config_derives_nothing_and_is_valid() -> None:
    assert validate_tree(Config()) == []


def test_registered_for_spans_and_logs() -> None:
    registry = load_registry([kpi], entry_points=False)
    assert registry.get(Kind.CONNECTOR, "kpi") is factory
    assert list(factory.connectors) == [(Signal.TRACES, Signal.METRICS), (Signal.LOGS, Signal.METRICS)]
