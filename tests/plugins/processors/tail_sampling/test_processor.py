"""Behaviour of the tail_sampling processor, driven in isolation with a fake clock (and the real timer once)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gateway._host.telemetry import Telemetry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import OverloadedError, RetryableError
from gateway.testing import Sink, settings_for
from plugins.processors.tail_sampling.factory import factory
from plugins.processors.tail_sampling.policies.probabilistic import DEFAULT_SALT, fnv1a_64, threshold
from plugins.processors.tail_sampling.processor import TailSamplingProcessor

from .traces import attribute, request, span, spans_of, tid, trace

ERRORS = {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
SLOW = {"name": "slow", "type": "latency", "latency": {"threshold_ms": 2000}}
BASELINE = {"name": "baseline", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}
RULE = [ERRORS, SLOW, BASELINE]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Downstream(Sink):
    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    async def consume_traces(self, batch: Any) -> None:
        if self.error is not None:
            raise self.error
        await super().consume_traces(batch)


def make(clock: Clock | None = None, sink: Any = None, telemetry: Telemetry | None = None,
         **overrides: Any) -> tuple[TailSamplingProcessor, Any]:
    config = decode(factory.create_default_config(), {"policies": RULE, **overrides})
    assert validate_tree(config) == []
    sink = sink if sink is not None else Downstream()
    settings = settings_for(Kind.PROCESSOR, "tail_sampling", Signal.TRACES, telemetry)
    return TailSamplingProcessor(settings, config, sink, clock=clock or Clock()), sink


def by_trace(sink: Sink) -> dict[bytes, list[Any]]:
    out: dict[bytes, list[Any]] = defaultdict(list)
    for s in sink.spans():
        out[s.trace_id].append(s)
    return out


def metric(telemetry: Telemetry, line: str) -> float:
    for row in telemetry.exposition().decode().splitlines():
        if row.startswith(line + " "):
            return float(row.rsplit(" ", 1)[1])
    return 0.0


# ---------------------------------------------------------------- the rule: errors, slow traces, 10% of the rest


def workload(rng: random.Random) -> tuple[list[ExportTraceServiceRequest], set[int], set[int], set[int]]:
    """600 traces of 6 spans: 30 with an error, 30 slower than 2 s, 540 normal. Each trace's spans are spread
    over three requests and two resources (services), and traces are interleaved within each request."""
    errors, slow = set(range(30)), set(range(30, 60))
    thirds: list[dict[str, list[Any]]] = [defaultdict(list) for _ in range(3)]
    for n in range(600):
        for i in range(6):
            s = span(n, i, root=i == 0, start_ms=i * 10, duration_ms=2500 if (n in slow and i == 0) else 20,
                     status=2 if (n in errors and i == 4) else 0, attributes={"i": i})
            thirds[i // 2]["a" if i % 2 == 0 else "b"].append(s)
    requests = []
    for third in thirds:
        for spans in third.values():
            rng.shuffle(spans)
        for start in range(0, 600, 150):  # four requests per third, each with both services
            requests.append(request(*(({"service.name": service}, spans[start:start + 150])
                                      for service, spans in sorted(third.items()))))
    return requests, errors, slow, set(range(60, 600))


async def test_keeps_every_error_and_slow_trace_whole_and_the_configured_share_of_the_rest() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="10s")
    requests, errors, slow, normal = workload(random.Random(3))
    for batch in requests:
        await processor.consume_traces(batch)
        clock.now += 0.1
    assert sink.spans() == [] and processor.pending_traces == 600
    clock.now += 10
    await processor.decide_due()
    kept = by_trace(sink)
    ids = {tid(n): n for n in range(600)}
    kept_numbers = {ids[t] for t in kept}
    assert errors <= kept_numbers and slow <= kept_numbers
    expected_normal = {n for n in normal if fnv1a_64(DEFAULT_SALT.encode() + tid(n)) <= threshold(10)}
    assert kept_numbers & normal == expected_normal
    assert abs(len(expected_normal) / len(normal) - 0.10) < 0.04
    for _trace_id, spans in kept.items():  # no kept trace is partial, and every span kept its resource
        assert sorted(attribute(s, "i") for s in spans) == list(range(6))
    services = {s.span_id: rs.resource.attributes[0].value.string_value
                for b in sink.batches[Signal.TRACES] for rs in b.resource_spans for ss in rs.scope_spans
                for s in ss.spans}
    assert all(services[s.span_id] == ("a" if attribute(s, "i") % 2 == 0 else "b") for s in sink.spans())
    policies = Counter(attribute(spans[0], "tailsampling.policy") for spans in kept.values())
    assert policies["errors"] == 30 and policies["slow"] == 30 and policies["baseline"] == len(expected_normal)
    assert processor.pending_traces == 0 and processor.buffered_bytes == 0 and processor.buffered_spans == 0


async def test_the_input_batches_are_never_modified() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="1s")
    batch = trace([span(1, 0, root=True), span(1, 1, status=2)])
    before = batch.SerializeToString()
    await processor.consume_traces(batch)
    clock.now += 2
    await processor.decide_due()
    assert batch.SerializeToString() == before
    assert attribute(sink.spans()[0], "tailsampling.policy") == "errors"


# ---------------------------------------------------------------- late spans and decision caches


@pytest.mark.parametrize("caches", [{}, {"sampled_cache_size": 10, "non_sampled_cache_size": 10}])
async def test_late_spans_follow_the_decision(caches: dict[str, int]) -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s", decision_cache=caches)
    dropped = next(n for n in range(100, 200) if fnv1a_64(DEFAULT_SALT.encode() + tid(n)) > threshold(10))
    await processor.consume_traces(trace([span(1, 0, root=True, status=2), span(dropped, 0, root=True)]))
    clock.now += 2
    await processor.decide_due()
    assert set(by_trace(sink)) == {tid(1)}
    clock.now += 5
    await processor.consume_traces(trace([span(1, 1), span(1, 2), span(dropped, 1)]))
    late = sink.batches[Signal.TRACES][-1]
    assert [s.span_id for s in spans_of([late])] == [span(1, 1).span_id, span(1, 2).span_id]
    assert attribute(spans_of([late])[0], "tailsampling.cached_decision") is True
    assert attribute(spans_of([late])[0], "tailsampling.policy") == "errors"
    assert processor.pending_traces == 0
    name = 'otelcol_processor_tail_sampling_early_releases_from_cache_decision_total{processor="tail_sampling",'
    assert metric(telemetry, name + 'sampled="true"}') == 2
    assert metric(telemetry, name + 'sampled="false"}') == 1


async def test_a_decision_cache_is_bounded_lru() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="1s", num_traces=100,
                           decision_cache={"sampled_cache_size": 2})
    for n in (1, 2, 3):
        await processor.consume_traces(trace([span(n, 0, root=True, status=2)]))
    clock.now += 2
    await processor.decide_due()
    sink.clear()
    await processor.consume_traces(trace([span(1, 1)]))  # evicted from the cache: a new trace again
    assert sink.spans() == [] and processor.pending_traces == 1
    await processor.consume_traces(trace([span(3, 1)]))
    assert len(sink.spans()) == 1


# ---------------------------------------------------------------- memory bounds


async def test_the_oldest_trace_is_evicted_when_num_traces_is_reached() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s", num_traces=3,
                           policies=[{"name": "all", "type": "always_sample"}])
    for n in range(5):
        await processor.consume_traces(trace([span(n, 0, root=True)]))
        clock.now += 0.01
    assert processor.pending_traces == 3
    clock.now += 2
    await processor.decide_due()
    assert set(by_trace(sink)) == {tid(2), tid(3), tid(4)}
    assert metric(telemetry, 'otelcol_processor_tail_sampling_sampling_trace_dropped_too_early_total'
                             '{processor="tail_sampling"}') == 2


async def test_the_byte_budget_evicts_the_oldest_traces() -> None:
    clock = Clock()
    one = trace([span(0, 0, root=True, attributes={"blob": "x" * 1000})])
    size = len(one.resource_spans[0].scope_spans[0].spans[0].SerializeToString())
    processor, _sink = make(clock, decision_wait="1s", maximum_buffer_size_bytes=3 * size + 10,
                           policies=[{"name": "all", "type": "always_sample"}])
    for n in range(5):
        await processor.consume_traces(trace([span(n, 0, root=True, attributes={"blob": "x" * 1000})]))
    assert processor.pending_traces == 3 and processor.buffered_bytes <= 3 * size + 10


async def test_block_on_overflow_refuses_whole_requests_until_decisions_free_room() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, _sink = make(clock, telemetry=telemetry, decision_wait="5s", num_traces=2, block_on_overflow=True,
                           policies=[{"name": "all", "type": "always_sample"}])
    await processor.consume_traces(trace([span(1, 0, root=True), span(2, 0, root=True)]))
    with pytest.raises(OverloadedError) as info:
        await processor.consume_traces(trace([span(1, 1), span(3, 0, root=True)]))
    assert 0 < info.value.retry_after <= 5
    assert processor.pending_traces == 2 and processor.buffered_spans == 2  # nothing of it was taken
    await processor.consume_traces(trace([span(1, 1), span(2, 1)]))  # spans of waiting traces still fit
    clock.now += 6
    await processor.decide_due()
    await processor.consume_traces(trace([span(1, 2), span(3, 0, root=True)]))  # room again
    assert processor.pending_traces == 1
    assert metric(telemetry, 'otelgw_processor_tail_sampling_refused_spans_total{processor="tail_sampling"}') == 2


async def test_a_giant_trace_is_decided_at_once_and_does_not_stall_the_others() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="10s", maximum_trace_size_bytes=5000,
                           policies=[ERRORS, {"name": "all-small", "type": "span_count",
                                              "span_count": {"min_spans": 1, "max_spans": 3}}])
    blob = {"blob": "x" * 1000}
    await processor.consume_traces(trace([span(1, 0, root=True), span(2, 0, root=True)]))
    giant = [span(8, i, root=i == 0, attributes=blob) for i in range(10)]
    giant_error = [span(9, i, root=i == 0, attributes=blob, status=2 if i == 3 else 0) for i in range(10)]
    await processor.consume_traces(trace(giant + giant_error))
    assert set(by_trace(sink)) == {tid(9)}  # kept at once by the error policy, whole
    assert len(sink.spans()) == 10
    assert processor.pending_traces == 2
    await processor.consume_traces(trace([span(8, 10), span(9, 10)]))  # later spans follow the decisions
    assert len(by_trace(sink)[tid(9)]) == 11 and tid(8) not in by_trace(sink)
    clock.now += 11
    await processor.decide_due()
    assert {tid(1), tid(2)} <= set(by_trace(sink))
    assert metric(telemetry, 'otelcol_processor_tail_sampling_traces_dropped_too_large_total'
                             '{processor="tail_sampling"}') == 1


# ---------------------------------------------------------------- timing


async def test_a_root_span_decides_early() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="30s", decision_wait_after_root_received="1s",
                           policies=[{"name": "all", "type": "always_sample"}])
    await processor.consume_traces(trace([span(1, 1), span(2, 1)]))
    await processor.consume_traces(trace([span(1, 0, root=True)]))
    clock.now += 1.5
    await processor.decide_due()
    assert set(by_trace(sink)) == {tid(1)} and len(sink.spans()) == 2
    clock.now += 30
    await processor.decide_due()
    assert set(by_trace(sink)) == {tid(1), tid(2)}


async def test_the_timer_decides_on_the_real_clock() -> None:
    processor, sink = make(None, decision_wait="100ms", policies=[{"name": "all", "type": "always_sample"}])
    processor._clock = asyncio.get_running_loop().time  # type: ignore[method-assign]
    await processor.start(None)
    try:
        await processor.consume_traces(trace([span(1, 0, root=True)]))
        for _ in range(200):
            if sink.spans():
                break
            await asyncio.sleep(0.02)
        assert len(sink.spans()) == 1
    finally:
        await asyncio.wait_for(processor.shutdown(), 5)


@pytest.mark.parametrize("drop", [False, True])
async def test_shutdown_decides_or_drops_pending_traces_and_never_hangs(drop: bool) -> None:
    processor, sink = make(None, decision_wait="1h", drop_pending_traces_on_shutdown=drop)
    await processor.start(None)
    await processor.consume_traces(trace([span(1, 0, root=True, status=2), span(2, 0, root=True)]))
    await asyncio.wait_for(processor.shutdown(), 5)
    assert set(by_trace(sink)) == (set() if drop else {tid(1)})
    assert processor.pending_traces == 0 and processor.buffered_bytes == 0


async def test_shutdown_without_start() -> None:
    processor, _ = make()
    await asyncio.wait_for(processor.shutdown(), 5)


# ---------------------------------------------------------------- precedence, attributes, failures, metrics


async def test_drop_wins_then_the_first_sampling_policy_is_recorded() -> None:
    clock = Clock()
    health = {"name": "health", "type": "drop", "drop": {"drop_sub_policy": [
        {"name": "route", "type": "string_attribute",
         "string_attribute": {"key": "http.route", "values": ["/healthz"]}}]}}
    processor, sink = make(clock, decision_wait="1s", policies=[ERRORS, {"name": "all", "type": "always_sample"},
                                                                health])
    await processor.consume_traces(trace([span(1, 0, root=True, status=2, attributes={"http.route": "/healthz"}),
                                          span(2, 0, root=True, status=2), span(3, 0, root=True)]))
    clock.now += 2
    await processor.decide_due()
    kept = by_trace(sink)
    assert set(kept) == {tid(2), tid(3)}
    assert attribute(kept[tid(2)][0], "tailsampling.policy") == "errors"
    assert attribute(kept[tid(3)][0], "tailsampling.policy") == "all"


async def test_record_policy_can_be_switched_off() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="1s", record_policy=False)
    batch = trace([span(1, 0, root=True, status=2)])
    await processor.consume_traces(batch)
    clock.now += 2
    await processor.decide_due()
    assert sink.spans() == spans_of([batch])


async def test_composite_records_its_sub_policy() -> None:
    clock = Clock()
    processor, sink = make(clock, decision_wait="1s", policies=[{
        "name": "budget", "type": "composite", "composite": {
            "max_total_spans_per_second": 100, "composite_sub_policy": [ERRORS]}}])
    await processor.consume_traces(trace([span(1, 0, root=True, status=2)]))
    clock.now += 2
    await processor.decide_due()
    [kept] = sink.spans()
    assert (attribute(kept, "tailsampling.policy"), attribute(kept, "tailsampling.composite_policy")) == (
        "budget", "errors")


async def test_a_refusing_next_component_is_counted_and_logged_not_raised(caplog: Any) -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s")
    sink.error = RetryableError("backend down")
    await processor.consume_traces(trace([span(1, 0, root=True, status=2), span(1, 1)]))
    clock.now += 2
    await processor.decide_due()
    assert metric(telemetry, 'otelgw_processor_tail_sampling_send_failed_spans_total'
                             '{processor="tail_sampling"}') == 2
    assert "backend down" in caplog.text


async def test_a_failing_policy_is_counted_and_the_others_still_decide() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s",
                           policies=[{"name": "all", "type": "always_sample"}, ERRORS])

    def broken(trace: Any) -> Any:
        raise ValueError("bug")

    processor._decider.policies[1].evaluate = broken  # type: ignore[method-assign]
    await processor.consume_traces(trace([span(1, 0, root=True)]))
    clock.now += 2
    await processor.decide_due()
    assert len(sink.spans()) == 1
    assert metric(telemetry, 'otelcol_processor_tail_sampling_sampling_policy_evaluation_error_total'
                             '{processor="tail_sampling"}') == 1


async def test_self_metrics_use_the_collectors_names() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, _sink = make(clock, telemetry=telemetry, decision_wait="1s")
    await processor.consume_traces(trace([span(1, 0, root=True, status=2), span(1, 1)]))
    assert metric(telemetry, 'otelcol_processor_tail_sampling_sampling_traces_on_memory'
                             '{processor="tail_sampling"}') == 1
    assert metric(telemetry, 'otelgw_processor_tail_sampling_spans_on_memory{processor="tail_sampling"}') == 2
    clock.now += 2
    await processor.decide_due()
    p = "otelcol_processor_tail_sampling_"
    assert metric(telemetry, f'{p}new_trace_id_received_total{{processor="tail_sampling"}}') == 1
    assert metric(telemetry, f'{p}count_traces_sampled_total{{decision="sampled",policy="errors",'
                             f'processor="tail_sampling",sampled="true"}}') == 1
    assert metric(telemetry, f'{p}count_traces_sampled_total{{decision="not_sampled",policy="slow",'
                             f'processor="tail_sampling",sampled="false"}}') == 1
    assert metric(telemetry, f'{p}global_count_traces_sampled_total{{decision="sampled",'
                             f'processor="tail_sampling",sampled="true"}}') == 1
    assert metric(telemetry, f'{p}sampling_decision_timer_latency_count{{processor="tail_sampling"}}') == 1
    assert metric(telemetry, f'{p}sampling_policy_execution_count_total{{policy="errors",'
                             f'processor="tail_sampling"}}') == 1
    assert metric(telemetry, 'otelcol_processor_outgoing_items_total{otel_signal="traces",'
                             'processor="tail_sampling"}') == 2


async def test_sample_on_first_match_skips_the_policies_after_the_first_sampler() -> None:
    clock, telemetry = Clock(), Telemetry()
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s", sample_on_first_match=True)
    await processor.consume_traces(trace([span(1, 0, root=True, status=2, duration_ms=3000)]))
    clock.now += 2
    await processor.decide_due()
    assert attribute(sink.spans()[0], "tailsampling.policy") == "errors"
    executions = 'otelcol_processor_tail_sampling_sampling_policy_execution_count_total{policy="%s",' \
                 'processor="tail_sampling"}'
    assert (metric(telemetry, executions % "errors"), metric(telemetry, executions % "slow")) == (1, 0)


async def test_with_block_on_overflow_the_byte_budget_refuses_too() -> None:
    clock = Clock()
    processor, _ = make(clock, decision_wait="1s", block_on_overflow=True, maximum_buffer_size_bytes=2000,
                        policies=[{"name": "all", "type": "always_sample"}])
    blob = {"blob": "x" * 900}
    await processor.consume_traces(trace([span(1, 0, root=True, attributes=blob)]))
    await processor.consume_traces(trace([span(2, 0, root=True, attributes=blob)]))
    with pytest.raises(OverloadedError):
        await processor.consume_traces(trace([span(3, 0, root=True, attributes=blob)]))
    assert processor.pending_traces == 2


async def test_received_bytes_are_split_as_they_came_and_a_sender_encoding_fields_out_of_order_is_still_right() -> None:
    """tail_sampling splits the request bytes the receiver attached instead of serializing the batch again; a
    sender that puts a span's trace id after its other fields (valid protobuf, but not what the byte walk reads
    first) gets its spans grouped by trace all the same: the batch is serialized in canonical order then."""
    from gateway import attached
    from gateway.helpers.protowire import field

    def out_of_order(batch: ExportTraceServiceRequest) -> bytes:
        scopes = b""
        for rs in batch.resource_spans:
            for ss in rs.scope_spans:
                spans = b""
                for s in ss.spans:
                    rest = type(s)()
                    rest.CopyFrom(s)
                    rest.ClearField("trace_id")
                    spans += field(b"\x12", rest.SerializeToString() + field(b"\x0a", s.trace_id))
                scopes += field(b"\x12", field(b"\x0a", ss.scope.SerializeToString()) + spans)
            return field(b"\x0a", field(b"\x0a", rs.resource.SerializeToString()) + scopes)
        return b""

    for encode in (ExportTraceServiceRequest.SerializeToString, out_of_order):
        clock = Clock()
        processor, sink = make(clock, decision_wait="1s",
                               policies=[{"name": "long", "type": "span_count", "span_count": {"min_spans": 3}}])
        batch = trace([span(1, 0, root=True), span(2, 0, root=True), span(1, 1), span(1, 2)])
        raw = encode(batch)
        assert ExportTraceServiceRequest.FromString(raw) == batch
        with attached(batch, raw):
            await processor.consume_traces(batch)
        clock.now += 2
        await processor.decide_due()
        assert {t: len(s) for t, s in by_trace(sink).items()} == {tid(1): 3}, encode


async def test_kept_spans_go_on_as_bytes_to_a_consumer_that_takes_them() -> None:
    """Kept traces leave as the request bytes tail_sampling assembled (a ``WireBatch`` for a consumer with
    ``consume_wire``, as the batch processor and the exporters are): no parse on the way, and the batch's count
    is the number of spans its bytes hold, also when releases of several traces are joined."""
    from gateway import WireBatch

    class TakesBytes:
        def __init__(self) -> None:
            self.batches: list[WireBatch] = []

        async def consume_wire(self, batch: WireBatch) -> None:
            self.batches.append(batch)

        async def consume_traces(self, batch: Any) -> None:  # pragma: no cover - must not be called
            raise AssertionError("handed a parsed message although it takes bytes")

    clock = Clock()
    downstream = TakesBytes()
    processor, _ = make(clock, sink=downstream, decision_wait="1s")
    kept = {1: 3, 2: 1, 3: 5}  # trace -> spans, all with an error
    await processor.consume_traces(trace([span(t, i, root=i == 0, status=2) for t, n in kept.items()
                                          for i in range(n)]))
    clock.now += 2
    await processor.decide_due()
    await processor.consume_traces(trace([span(2, 7, status=0)]))  # late: follows the kept decision
    assert sum(b.items for b in downstream.batches) == sum(kept.values()) + 1
    for batch in downstream.batches:
        message = ExportTraceServiceRequest.FromString(batch.data)
        assert batch.items == sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
    spans = [s for b in downstream.batches for rs in ExportTraceServiceRequest.FromString(b.data).resource_spans
             for ss in rs.scope_spans for s in ss.spans]
    assert Counter(s.trace_id for s in spans) == Counter({tid(1): 3, tid(2): 2, tid(3): 5})
