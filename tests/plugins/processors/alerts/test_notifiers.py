"""Routing, dedup, repeat_interval, escalation, and every notifier against a local test server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp import web

from gateway.configtypes import decode
from plugins.processors.alerts.config import Config
from plugins.processors.alerts.notifiers import decode_notifier

from .helpers import gauge, make_processor


class Receiver:
    """A local HTTP server recording JSON bodies; answers from a script of (status, body, headers)."""

    def __init__(self, answers: list[tuple[int, str, dict[str, str]]] | None = None,
                 default: tuple[int, str] = (200, "ok")) -> None:
        self.bodies: list[Any] = []
        self.answers = list(answers or [])
        self.default = default
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        if self.answers:
            status, text, headers = self.answers.pop(0)
            return web.Response(status=status, text=text, headers=headers)
        return web.Response(status=self.default[0], text=self.default[1])

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)  # the test server logs URLs; we check ours
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def rule(**overrides: Any) -> dict[str, Any]:
    return {"alert": "QueueDepth", "metric": "q", "op": "gt", "threshold": 20, "severity": "critical",
            "group_by": ["queue"], "annotations": {"summary": "queue {{ $labels.queue }} at {{ $value }}",
                                                     "runbook_url": "https://runbooks.example/queue"}, **overrides}


async def drain(processor) -> None:
    for notifier in processor.notifiers.values():
        await notifier.drain()


async def test_slack_payload_repeat_interval_and_resolve():
    async with Receiver() as slack:
        raw = {"rules": [rule()], "notifiers": {"slack/ops": {"webhook_url": f"{slack.url}/services/T/B/secret"}},
               "routes": [{"severity": ["critical"], "notifiers": ["slack/ops"], "repeat_interval": "10m"}]}
        p, _, clock = make_processor(raw)
        await p.start(None)
        try:
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            p.evaluate()
            await drain(p)
            assert slack.bodies == [{
                "text": "[FIRING] QueueDepth: queue billing at 25",
                "attachments": [{"color": "#d00000", "title": "[FIRING] QueueDepth (critical)",
                                 "text": "queue billing at 25",
                                 "fields": [{"title": "queue", "value": "billing", "short": True}],
                                 "footer": "otelgw", "mrkdwn_in": ["text"],
                                 "title_link": "https://runbooks.example/queue"}]}]
            for _ in range(3):  # still firing, inside repeat_interval: deduplicated
                clock.advance(60)
                await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
                p.evaluate()
            await drain(p)
            assert len(slack.bodies) == 1
            clock.advance(420)  # 10 min after the first notification: repeat
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            p.evaluate()
            await drain(p)
            assert len(slack.bodies) == 2
            clock.advance(15)
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 1)]))
            p.evaluate()
            await drain(p)
            assert slack.bodies[-1]["text"] == "[RESOLVED] QueueDepth: queue billing at 25"  # last value while firing
            assert slack.bodies[-1]["attachments"][0]["color"] == "#2eb886"
        finally:
            await p.shutdown()


async def test_pagerduty_trigger_resolve_dedup_key_and_429_retry_after():
    async with Receiver(answers=[(429, "", {"Retry-After": "7"})], default=(202, '{"status":"success"}')) as pd:
        raw = {"rules": [rule()], "notifiers": {"pagerduty": {"routing_key": "R" * 32, "url": f"{pd.url}/v2/enqueue",
                                                              "retry": {"initial_interval": "1s"}}}}
        p, _, clock = make_processor(raw)
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)
        p.notifiers["pagerduty"].sleep = fake_sleep
        await p.start(None)
        try:
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            (alert,) = p.evaluate()
            await drain(p)
            assert slept == [7.0]  # the receiver's Retry-After beat our 1 s backoff
            assert len(pd.bodies) == 2 and pd.bodies[0] == pd.bodies[1]
            trigger = pd.bodies[1]
            assert trigger == {
                "routing_key": "R" * 32, "event_action": "trigger", "dedup_key": alert.fingerprint,
                "client": "otelgw", "links": [{"href": "https://runbooks.example/queue", "text": "runbook"}],
                "payload": {"summary": "QueueDepth: queue billing at 25", "source": "otelgw",
                            "severity": "critical", "timestamp": trigger["payload"]["timestamp"],
                            "custom_details": {"labels": alert.labels, "annotations": alert.annotations,
                                               "value": 25.0}}}
            clock.advance(15)
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 0)]))
            p.evaluate()
            await drain(p)
            assert pd.bodies[-1]["event_action"] == "resolve"
            assert pd.bodies[-1]["dedup_key"] == alert.fingerprint
            registry = p.settings.telemetry.registry
            assert registry.get_sample_value("otelgw_alerts_notifications_total",
                                             {"processor": "alerts", "notifier": "pagerduty",
                                              "outcome": "sent"}) == 2
        finally:
            await p.shutdown()


async def test_webhook_body_and_permanent_failure_counted(caplog):
    async with Receiver(answers=[(400, "bad", {})]) as hook:
        secret_url = f"{hook.url}/hook?token=s3cr3t"
        raw = {"rules": [rule()], "notifiers": {"webhook": {"url": secret_url}}}
        p, _, _clock = make_processor(raw)
        await p.start(None)
        try:
            caplog.set_level(logging.INFO)
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            (alert,) = p.evaluate()
            await drain(p)
            assert len(hook.bodies) == 1  # 400 is not retried
            body = hook.bodies[0]
            assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "webhook"
            assert body["alerts"][0]["labels"] == alert.labels
            assert body["alerts"][0]["fingerprint"] == alert.fingerprint
            assert "s3cr3t" not in caplog.text
            registry = p.settings.telemetry.registry
            assert registry.get_sample_value("otelgw_alerts_notifications_total",
                                             {"processor": "alerts", "notifier": "webhook", "outcome": "failed"}) == 1
        finally:
            await p.shutdown()


async def test_routes_first_match_continue_and_escalation():
    async with Receiver() as a, Receiver() as b, Receiver() as c:
        raw = {"rules": [rule(), rule(alert="Minor", severity="warning", threshold=10)],
               "notifiers": {"webhook/team": {"url": a.url}, "webhook/all": {"url": b.url},
                             "webhook/manager": {"url": c.url}},
               "routes": [{"severity": ["critical"], "notifiers": ["webhook/team"], "continue": True,
                           "escalation": {"after": "15m", "notifiers": ["webhook/manager"]}},
                          {"match": {"alertname": {"regex": "Queue.*|Minor"}}, "notifiers": ["webhook/all"]},
                          {"notifiers": ["webhook/manager"]}]}
        p, _, clock = make_processor(raw)
        await p.start(None)
        try:
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            p.evaluate()
            await drain(p)
            names = lambda r: [x["labels"]["alertname"] for body in r.bodies for x in body["alerts"]]  # noqa: E731
            assert names(a) == ["QueueDepth"]
            assert sorted(names(b)) == ["Minor", "QueueDepth"]  # continue: the critical one also reaches route 2
            assert names(c) == []  # route 2 matched without continue: route 3 never reached
            clock.advance(16 * 60)
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            p.evaluate()
            await drain(p)
            assert names(c) == ["QueueDepth"]  # escalated after 15 min
            assert len(a.bodies) == 1  # repeat_interval (4h default) still holds for the team
            clock.advance(15)
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 0)]))
            p.evaluate()
            await drain(p)
            assert c.bodies[-1]["status"] == "resolved"  # whoever heard of it hears it resolved
            assert a.bodies[-1]["status"] == "resolved"
        finally:
            await p.shutdown()


async def test_slow_notifier_never_blocks_pipeline():
    gate = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await gate.wait()
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_post("/", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    raw = {"rules": [rule()], "notifiers": {"webhook": {"url": f"http://127.0.0.1:{port}/", "timeout": "30s"}}}
    p, sink, clock = make_processor(raw)
    await p.start(None)
    try:
        for i in range(20):
            await asyncio.wait_for(p.consume_metrics(gauge("q", [({"queue": f"q{i}"}, 25)])), 1)
            p.evaluate()
            clock.advance(1)
        from gateway.component import Signal
        assert len(sink.batches[Signal.METRICS]) == 20
    finally:
        gate.set()
        await p.shutdown()
        await runner.cleanup()


def test_secrets_never_in_repr_or_messages():
    config, errors = decode_notifier("slack", {"webhook_url": "https://hooks.slack.com/services/T/B/XYZ"})
    assert errors == [] and "XYZ" not in repr(config)
    config, _ = decode_notifier("pagerduty", {"routing_key": "K" * 32})
    assert "KKKK" not in repr(config)
    config, _ = decode_notifier("email", {"smarthost": "127.0.0.1:25", "to": ["a@b"], "password": "pw123"})
    assert "pw123" not in repr(config)
    _, errors = decode_notifier("webhook", {"url": ["https://x/secret-token"]})
    assert errors and not any("secret-token" in e for e in errors)


def test_config_errors_have_paths():
    raw = {"rules": [{"alert": "A", "metric": "m", "op": "bigger", "for": "soon"}, {"metric": "m"}],
           "routes": [{"notifiers": ["slack/none"], "continue": "maybe"}],
           "notifiers": {"log": {}, "carrier_pigeon": {}}}
    config = decode(Config(), raw)
    with pytest.raises(Exception) as info:
        config.validate()
    messages = info.value.messages  # type: ignore[attr-defined]
    assert "rules::0::for: expected a duration such as '5s', '200ms' or '1m30s', got 'soon'" in messages
    assert "rules::1::alert: must not be empty" in messages
    assert "routes::0::continue: expected bool, got str 'maybe'" in messages
    assert any(m.startswith("notifiers::carrier_pigeon: unknown notifier type") for m in messages)


async def test_retries_wait_by_the_sdk_backoff_and_honour_an_http_date_retry_after():
    """The notifiers' waits are gateway.Backoff's (the exporters' policy): ±20% around an interval that doubles up
    to max_interval, or the receiver's Retry-After when longer, given in seconds or as an HTTP date."""
    import email.utils
    import time

    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    answers = [(503, "", {}), (503, "", {}), (503, "", {}), (429, "", {"Retry-After": later})]
    async with Receiver(answers=answers) as hook:
        raw = {"rules": [rule()], "notifiers": {"webhook": {"url": f"{hook.url}/hook", "retry": {
            "initial_interval": "1s", "max_interval": "3s", "max_attempts": 6}}}}
        p, _, _ = make_processor(raw)
        slept: list[float] = []

        async def fake_sleep(seconds: float) -> None:
            slept.append(seconds)
        p.notifiers["webhook"].sleep = fake_sleep
        await p.start(None)
        try:
            await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
            p.evaluate()
            await drain(p)
        finally:
            await p.shutdown()
    assert len(hook.bodies) == 5  # four refusals, then delivered
    assert 0.8 <= slept[0] <= 1.2 and 1.6 <= slept[1] <= 2.4 and 2.4 <= slept[2] <= 3.6  # capped at 3 s
    assert 100 <= slept[3] <= 121  # the HTTP date, about two minutes ahead, beat the 3 s backoff
