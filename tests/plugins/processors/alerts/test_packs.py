"""The rule packs in configs/alerts validate, and their rules go pending → firing → resolved on crafted input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plugins.processors.alerts.lifecycle import State

from .helpers import counter, gauge, histogram, make_processor

PACKS = Path(__file__).parents[4] / "configs" / "alerts"


def pack(name: str) -> dict:
    processors = yaml.safe_load((PACKS / f"{name}.yaml").read_text())["processors"]
    (config,) = processors.values()
    return config


@pytest.mark.parametrize("name", ["callcenter", "llm_agent", "api", "crm"])
def test_pack_validates(name):
    make_processor(pack(name))


async def cycle(p, clock, send_bad, send_good, rounds: int = 60, step: float = 15.0,
                good_step: float = 15.0) -> set[str]:
    fired: set[str] = set()
    for _ in range(rounds):
        await send_bad()
        fired |= {f"{a.name}/{a.severity}" for a in p.evaluate() if a.state is State.FIRING}
        clock.advance(step)
    resolved: set[str] = set()
    for _ in range(rounds * 2):
        await send_good()
        resolved |= {f"{a.name}/{a.severity}" for a in p.evaluate() if a.state is State.RESOLVED}
        clock.advance(good_step)
    assert resolved == fired
    return fired


async def test_callcenter_pack_cycle():
    p, _, clock = make_processor(pack("callcenter"))
    q = {"queue": "billing"}

    async def bad():
        await p.consume_metrics(gauge("callcenter.queue.depth", [(q, 25)]))
        await p.consume_metrics(gauge("callcenter.service_level", [(q, 0.5)]))
        await p.consume_metrics(gauge("callcenter.abandoned", [(q, 0.2)]))
        await p.consume_metrics(gauge("callcenter.agents.available", [(q, 0)]))

    async def good():
        await p.consume_metrics(gauge("callcenter.queue.depth", [(q, 2)]))
        await p.consume_metrics(gauge("callcenter.service_level", [(q, 0.95)]))
        await p.consume_metrics(gauge("callcenter.abandoned", [(q, 0.01)]))
        await p.consume_metrics(gauge("callcenter.agents.available", [(q, 4)]))
    assert await cycle(p, clock, bad, good) == {
        "CallCenterNoAgentsAvailable/critical", "CallCenterQueueBacklog/critical", "CallCenterQueueBacklog/warning",
        "CallCenterServiceLevelLow/critical", "CallCenterServiceLevelLow/high", "CallCenterAbandonmentHigh/warning"}


async def test_llm_agent_pack_cycle():
    p, _, clock = make_processor(pack("llm_agent"))
    agent, model = {"gen_ai.agent.name": "helper"}, {"gen_ai.request.model": "m"}
    n = {"i": 0}
    bounds = [0.5, 1, 2, 4, 8, 16, 32, 64]

    async def bad():
        n["i"] += 1
        i = n["i"]
        await p.consume_metrics(histogram("llm.agent.response.time", agent, bounds, [0, 0, 0, 0, 0, 10 * i, 0, 0, 0]))
        await p.consume_metrics(counter("llm.cost.usd", [(model, 3 * i)]))
        await p.consume_metrics(counter("llm.requests", [({**model, "status": "error"}, 5 * i),
                                                          ({**model, "status": "ok"}, 5 * i)]))
        await p.consume_metrics(gauge("llm.agent.handoff", [({**agent, "reason": "angry"}, 0.6)]))
        await p.consume_metrics(gauge("llm.knowledge_base.hit", [({"gen_ai.tool.name": "kb"}, 0.2)]))

    async def good():
        n["i"] += 1
        i = n["i"]
        await p.consume_metrics(histogram("llm.agent.response.time", agent, bounds, [1000 * i, 0, 0, 0, 0, 0, 0, 0, 0]))
        await p.consume_metrics(counter("llm.cost.usd", [(model, 3 * 60)]))
        await p.consume_metrics(counter("llm.requests", [({**model, "status": "error"}, 5 * 60),
                                                          ({**model, "status": "ok"}, 100 * i)]))
        await p.consume_metrics(gauge("llm.agent.handoff", [({**agent, "reason": "angry"}, 0.1)]))
        await p.consume_metrics(gauge("llm.knowledge_base.hit", [({"gen_ai.tool.name": "kb"}, 0.9)]))
    fired = await cycle(p, clock, bad, good, rounds=80, step=15.0)
    assert fired == {"LlmResponseSlow/warning", "LlmResponseSlow/high", "LlmCostPerConversationHigh/warning",
                     "LlmCostPerConversationHigh/high", "LlmHandoffRateHigh/warning", "LlmHandoffRateHigh/high",
                     "KnowledgeBaseHitRateLow/warning", "LlmErrorRateHigh/high", "LlmErrorRateHigh/warning"}


async def test_api_pack_cycle():
    p, _, clock = make_processor(pack("api"))
    n = {"i": 0}
    server = {"service.name": "customers-api", "span.kind": "SPAN_KIND_SERVER"}
    bounds = [100, 500, 1000, 2000]

    async def bad():
        n["i"] += 1
        i = n["i"]
        await p.consume_metrics(counter("traces.span.metrics.calls", [
            ({**server, "status.code": "STATUS_CODE_ERROR"}, 50 * i),
            ({**server, "status.code": "STATUS_CODE_UNSET"}, 50 * i)]))
        await p.consume_metrics(histogram("traces.span.metrics.duration", server, bounds, [0, 0, 0, 0, 100 * i]))

    async def good():
        n["i"] += 1
        i = n["i"]
        await p.consume_metrics(counter("traces.span.metrics.calls", [
            ({**server, "status.code": "STATUS_CODE_ERROR"}, 50 * 80),
            ({**server, "status.code": "STATUS_CODE_UNSET"}, 1000 * i)]))
        await p.consume_metrics(histogram("traces.span.metrics.duration", server, bounds,
                                          [10000 * i, 0, 0, 0, 100 * 80]))
    # the 24h/2h SLO window needs 2 h of good traffic to resolve
    fired = await cycle(p, clock, bad, good, rounds=80, step=15.0, good_step=60.0)
    assert {"ApiErrorRateHigh/critical", "ApiLatencyHigh/warning", "SLOBurnRate/critical"} <= fired


async def test_api_pack_ignores_services_it_does_not_name():
    """An AI agent's server spans wait on a model for seconds: that is not API latency, and must not page."""
    p, _, clock = make_processor(pack("api"))
    agent = {"service.name": "support-agent", "span.kind": "SPAN_KIND_SERVER"}
    fired: set[str] = set()
    for i in range(1, 80):
        await p.consume_metrics(counter("traces.span.metrics.calls", [
            ({**agent, "status.code": "STATUS_CODE_ERROR"}, 50 * i),
            ({**agent, "status.code": "STATUS_CODE_UNSET"}, i)]))
        await p.consume_metrics(histogram("traces.span.metrics.duration", agent, [100, 500, 1000, 2000],
                                          [0, 0, 0, 0, 100 * i]))
        fired |= {a.name for a in p.evaluate()}
        clock.advance(15.0)
    assert fired == set()
