"""Property: a generated secret, put in a generated place of a generated batch, never leaves the processor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.component import Kind, Signal
from gateway.configtypes import decode
from gateway.testing import Sink, any_value, make_logs, make_metrics, make_traces, settings_for
from plugins.processors.redaction.detectors import DETECTORS
from plugins.processors.redaction.factory import factory

from .generators import SECRETS, context

KEY = "k" * 32
Place = Callable[[Any, str], None]


def _span(request: Any, index: int) -> Any:
    spans = request.resource_spans[0].scope_spans[0].spans
    return spans[index % len(spans)]


def _record(request: Any, index: int) -> Any:
    records = request.resource_logs[0].scope_logs[0].log_records
    return records[index % len(records)]


def _point(request: Any, kind: str) -> Any:
    metric = request.resource_metrics[0].scope_metrics[0].metrics.add(name="m")
    return getattr(metric, kind).data_points.add(time_unix_nano=1)


TRACE_PLACES: dict[str, Callable[[Any, int, str], None]] = {
    "attribute": lambda r, i, t: _span(r, i).attributes.add(key="note").value.__setattr__("string_value", t),
    "map": lambda r, i, t: _span(r, i).attributes.add(key="user").value.CopyFrom(any_value({"a": 1, "b": t})),
    "array": lambda r, i, t: _span(r, i).attributes.add(key="cc").value.CopyFrom(any_value(["x", t])),
    "name": lambda r, i, t: setattr(_span(r, i), "name", t),
    "status": lambda r, i, t: setattr(_span(r, i).status, "message", t),
    "event name": lambda r, i, t: _span(r, i).events.add(name=t),
    "event attribute": lambda r, i, t: _span(r, i).events.add(name="e").attributes.add(
        key="text").value.__setattr__("string_value", t),
    "link attribute": lambda r, i, t: _span(r, i).links.add(span_id=b"\x01" * 8).attributes.add(
        key="via").value.__setattr__("string_value", t),
    "resource": lambda r, i, t: r.resource_spans[0].resource.attributes.add(key="o").value.__setattr__(
        "string_value", t),
    "scope": lambda r, i, t: r.resource_spans[0].scope_spans[0].scope.attributes.add(key="o").value.__setattr__(
        "string_value", t),
}
LOG_PLACES: dict[str, Callable[[Any, int, str], None]] = {
    "body": lambda r, i, t: setattr(_record(r, i).body, "string_value", t),
    "map body": lambda r, i, t: _record(r, i).body.CopyFrom(any_value({"msg": t, "n": 2})),
    "array body": lambda r, i, t: _record(r, i).body.CopyFrom(any_value([{"msg": [t]}])),
    "attribute": lambda r, i, t: _record(r, i).attributes.add(key="m").value.__setattr__("string_value", t),
    "event name": lambda r, i, t: setattr(_record(r, i), "event_name", t),
}
METRIC_PLACES: dict[str, Callable[[Any, int, str], None]] = {
    kind: (lambda k: lambda r, i, t: _point(r, k).attributes.add(key="c").value.__setattr__("string_value", t))(kind)
    for kind in ("gauge", "sum", "histogram", "exponential_histogram", "summary")
}
METRIC_PLACES["exemplar"] = lambda r, i, t: _point(r, "histogram").exemplars.add().filtered_attributes.add(
    key="u").value.__setattr__("string_value", t)

PLACES = ([(Signal.TRACES, p) for p in TRACE_PLACES] + [(Signal.LOGS, p) for p in LOG_PLACES]
          + [(Signal.METRICS, p) for p in METRIC_PLACES])
BUILDERS = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
TABLES = {Signal.TRACES: TRACE_PLACES, Signal.METRICS: METRIC_PLACES, Signal.LOGS: LOG_PLACES}

configs = st.fixed_dictionaries({
    "allow_all_keys": st.just(True),
    "hmac_key": st.just(KEY),
    "detectors": st.fixed_dictionaries({name: st.sampled_from(["mask", "hash", "length", "drop"])
                                        for name in DETECTORS}),
    "summary": st.sampled_from(["silent", "info", "debug"]),
    "hash_length": st.sampled_from([0, 16]),
})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=st.one_of(*SECRETS.values()), around=context, place=st.sampled_from(PLACES), config=configs,
       items=st.integers(1, 6), index=st.integers(0, 5), padding=st.integers(0, 130))
def test_no_generated_secret_leaves_the_processor(secret: Any, around: Any, place: Any, config: dict[str, Any],
                                                  items: int, index: int, padding: int) -> None:
    detector, text, value = secret
    text = around[0] + text + around[1]
    if not any(value in text[a:b] for a, b in DETECTORS[detector].find(text)):
        return  # the context made it something else
    if padding:
        text = "p" * padding + " " + text  # moves the length byte in front of the string through the alphabet
    signal, where = place
    request = BUILDERS[signal](items)
    TABLES[signal][where](request, index, text)
    processor = factory.create_fn(signal)(  # type: ignore[misc]
        settings_for(Kind.PROCESSOR, "redaction", signal), decode(factory.create_default_config(), config), Sink())
    result = getattr(processor, f"process_{signal.value}")(request)
    assert value.encode() not in result.SerializeToString(), (detector, text, where)
