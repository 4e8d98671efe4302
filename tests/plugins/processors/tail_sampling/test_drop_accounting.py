"""Drop accounting of tail_sampling: every span it lets go of is in ``otelgw_component_dropped_items_total`` with
its reason (``not_sampled``, ``evicted``, ``send_failed``, ``shutdown``), which ``otelgw top``, the status page
and the shutdown report read."""

from __future__ import annotations

import asyncio

from gateway._host.telemetry import Telemetry
from gateway.errors import RetryableError

from .test_processor import Clock, make
from .traces import span, trace


def dropped(telemetry: Telemetry, reason: str) -> float:
    value = telemetry.registry.get_sample_value("otelgw_component_dropped_items_total", {
        "component": "tail_sampling", "otel_signal": "traces", "reason": reason})
    return value or 0.0


async def test_every_span_let_go_is_counted_with_its_reason() -> None:
    clock, telemetry = Clock(), Telemetry()
    errors_only = [{"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}]
    processor, sink = make(clock, telemetry=telemetry, decision_wait="1s", num_traces=2, policies=errors_only,
                           drop_pending_traces_on_shutdown=True)
    # not sampled: a trace of two spans without an error
    await processor.consume_traces(trace([span(1, 0, root=True), span(1, 1)]))
    clock.now += 2
    await processor.decide_due()
    assert dropped(telemetry, "not_sampled") == 2
    # evicted: three traces waiting where two fit; the oldest (three spans) goes before its decision
    for n, spans in ((2, 3), (3, 1), (4, 1)):
        await processor.consume_traces(trace([span(n, i, root=i == 0, status=2) for i in range(spans)]))
        clock.now += 0.01
    assert dropped(telemetry, "evicted") == 3
    # send failed: the next component refuses a kept trace (spans 3 and 4, one each)
    sink.error = RetryableError("backend down")
    clock.now += 2
    await processor.decide_due()
    assert dropped(telemetry, "send_failed") == 2
    # shutdown: a trace still waiting, with drop_pending_traces_on_shutdown
    sink.error = None
    await processor.consume_traces(trace([span(5, 0, root=True, status=2), span(5, 1)]))
    await asyncio.wait_for(processor.shutdown(), 5)
    assert dropped(telemetry, "shutdown") == 2
    assert not sink.spans()  # nothing of the above reached it
    # and the gateway's loss report counts all but the sampler's own choice
    assert telemetry.dropped_items() == 3 + 2 + 2
