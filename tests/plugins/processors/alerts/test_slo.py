"""SLO burn rates and error budget, hand-computed."""

from __future__ import annotations

import pytest

from .helpers import counter, histogram, make_processor

SLO = {"slos": [{"name": "api", "objective": 0.99, "period": "720h",
                 "total": {"metric": "calls", "match": {"service.name": "api"}},
                 "errors": {"metric": "calls", "match": {"service.name": "api", "status.code": "STATUS_CODE_ERROR"}}}]}


async def feed(p, clock, steps: int, ok_step: int, err_step: int, start: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    ok, err = start
    for _ in range(steps):
        await p.consume_metrics(counter("calls", [({"service.name": "api", "status.code": "STATUS_CODE_UNSET"}, ok),
                                                  ({"service.name": "api", "status.code": "STATUS_CODE_ERROR"}, err),
                                                  ({"service.name": "web", "status.code": "STATUS_CODE_ERROR"}, 999)]))
        clock.advance(300)
        ok, err = ok + ok_step, err + err_step
    clock.advance(-300)
    return ok, err


async def test_burn_rates_budget_and_multiwindow_alerts():
    p, _, clock = make_processor(SLO)
    # 13 samples, 5 min apart (t0 .. t0+60m): each step 80 ok + 20 errors → error ratio 0.2, burn 0.2/0.01 = 20
    state = await feed(p, clock, 13, 80, 20)
    p.evaluate()
    slo = p.rules[0]
    assert slo.burn_rates == {"1h": pytest.approx(20.0), "5m": pytest.approx(20.0),
                              "6h": pytest.approx(20.0), "30m": pytest.approx(20.0)}
    assert slo.budget_remaining == pytest.approx(1 - 0.2 / 0.01)
    alerts = {(a.labels["long_window"], a.severity): a.state.value for a in p.book.alerts.values()}
    assert alerts == {("1h", "critical"): "firing", ("6h", "high"): "firing"}
    registry = p.settings.telemetry.registry
    assert registry.get_sample_value("otelgw_alerts_slo_error_budget_remaining",
                                     {"processor": "alerts", "slo": "api"}) == pytest.approx(-19.0)
    # errors stop: 10 min later the 5m window shows 0 → the 1h alert resolves although its long window still burns
    clock.advance(300)
    await feed(p, clock, 2, 100, 0, state)
    changed = p.evaluate()
    assert {a.labels["long_window"] for a in changed} == {"1h"}  # 30m still shows errors: 6h keeps firing
    assert slo.burn_rates["5m"] == 0.0
    # 1h window at t0+70m, baseline t0+10m (ok 160, err 40); last ok 1140, err 260 → 220 errors of 1200
    assert slo.burn_rates["1h"] == pytest.approx(220 / 1200 / 0.01)


async def test_latency_slo_from_histogram():
    raw = {"slos": [{"name": "fast", "type": "latency", "objective": 0.9, "threshold": 1.0,
                     "total": {"metric": "lat"}, "windows": [{"long": "1h", "short": "5m", "factor": 2}]}]}
    p, _, clock = make_processor(raw)
    await p.consume_metrics(histogram("lat", {}, [0.5, 1, 2], [0, 0, 0, 0]))
    clock.advance(120)
    # 100 requests: 50 ≤ 0.5 s, 20 ≤ 1 s, 20 ≤ 2 s, 10 slower → 30 % slow, budget 10 % → burn 3
    await p.consume_metrics(histogram("lat", {}, [0.5, 1, 2], [50, 20, 20, 10]))
    p.evaluate()
    assert p.rules[0].burn_rates == {"1h": pytest.approx(3.0), "5m": pytest.approx(3.0)}
    assert [a.state.value for a in p.book.alerts.values()] == ["firing"]
