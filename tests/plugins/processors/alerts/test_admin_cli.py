"""Admin routes (bearer token enforced by the server) and the ``otelgw alerts`` CLI over them."""

from __future__ import annotations

import asyncio
import json

from gateway._host.admin import AdminConfig, AdminServer
from gateway._host.cli import main
from gateway._host.telemetry import Telemetry
from gateway.testing import make_host

from .helpers import gauge, make_processor

RULES = {"rules": [{"alert": "QueueDepth", "metric": "q", "op": "gt", "threshold": 20, "severity": "critical",
                    "group_by": ["queue"]},
                   {"alert": "QueueDepth", "metric": "q", "op": "gt", "threshold": 10, "severity": "warning",
                    "group_by": ["queue"]}]}


async def cli(capsys, *argv: str) -> tuple[int, str]:
    code = await asyncio.to_thread(main, list(argv))
    return code, capsys.readouterr().out


async def test_list_resolve_silence_rules(capsys):
    admin = AdminServer(AdminConfig(endpoint="127.0.0.1:0", token="tok"))
    await admin.start()
    p, _, _clock = make_processor(RULES)
    await p.start(make_host(Telemetry(), admin=admin))
    base = ["alerts", "--admin", f"http://{admin.address}", "--token", "tok"]
    try:
        await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25), ({"queue": "sales"}, 15)]))
        p.evaluate()
        code, out = await cli(capsys, *base, "list", "--json")
        alerts = json.loads(out)["alerts"]
        assert code == 0 and sorted((a["severity"], a["labels"]["queue"]) for a in alerts) == [
            ("critical", "billing"), ("warning", "billing"), ("warning", "sales")]
        code, out = await cli(capsys, *base, "list", "--severity", "critical")
        assert code == 0 and "QueueDepth" in out and "queue=billing" in out and "sales" not in out
        critical = next(a for a in alerts if a["severity"] == "critical")
        code, out = await cli(capsys, *base, "resolve", critical["id"])
        assert code == 0 and out.startswith("resolved QueueDepth")
        assert p.book.alerts[critical["id"]].state.value == "resolved"
        code, out = await cli(capsys, *base, "silence", "queue=sales", "--for", "1h")
        assert code == 0 and out.startswith("silence ")
        code, out = await cli(capsys, *base, "list", "--json")
        sales = next(a for a in json.loads(out)["alerts"] if a["labels"]["queue"] == "sales")
        assert sales["silenced"] is True
        code, out = await cli(capsys, *base, "rules")
        assert code == 0 and "last(q) gt 20" in out and "queue=billing=25" in out
        # wrong token: the server refuses, the CLI says so
        try:
            await asyncio.to_thread(main, ["alerts", "--admin", f"http://{admin.address}", "--token", "bad", "list"])
        except SystemExit as exc:
            assert "401" in str(exc)
        else:
            raise AssertionError("a bad token must fail")
    finally:
        await p.shutdown()
        await admin.stop()
    assert "GET /api/alerts" not in admin.routes()  # removed on shutdown


async def test_options_after_the_subcommand_silences_and_outputs(capsys):
    admin = AdminServer(AdminConfig(endpoint="127.0.0.1:0", token="tok"))
    await admin.start()
    p, _, _clock = make_processor(RULES)
    await p.start(make_host(Telemetry(), admin=admin))
    after = ["--admin", f"http://{admin.address}", "--token", "tok"]
    try:
        await p.consume_metrics(gauge("q", [({"queue": "billing"}, 25), ({"queue": "sales"}, 15)]))
        p.evaluate()
        code, out = await cli(capsys, "alerts", "list", *after, "--output", "json")
        assert code == 0 and len(json.loads(out)["alerts"]) == 3
        # before the subcommand works as well, and the later --output wins
        code, out = await cli(capsys, "alerts", "--output", "json", *after, "list", "--output", "summary")
        assert code == 0 and out.strip() == "3 alerts: 3 firing (critical 1, warning 2)"
        code, out = await cli(capsys, "alerts", "silence", "queue=sales", "--for", "1h", *after, "-o", "json")
        sid = json.loads(out)["silence"]["id"]
        code, out = await cli(capsys, "alerts", "silences", *after)
        assert code == 0 and sid in out and "queue=sales" in out
        code, out = await cli(capsys, "alerts", "silences", *after, "--output", "summary")
        assert out.strip() == "1 active silences"
        code, out = await cli(capsys, "alerts", "silences", "--expire", sid, *after)
        assert code == 0 and out.strip() == f"expired silence {sid}"
        code, out = await cli(capsys, "alerts", "silences", *after, "--output", "json")
        assert json.loads(out) == {"silences": []}
        code, out = await cli(capsys, "alerts", "rules", *after, "--output", "summary")
        assert out.strip() == "2 rules, 0 SLOs"
        try:
            await asyncio.to_thread(main, ["alerts", "silences", "--expire", "nope", *after])
        except SystemExit as exc:
            assert "404" in str(exc) and "no silence" in str(exc)
        else:
            raise AssertionError("expiring an unknown silence must fail")
    finally:
        await p.shutdown()
        await admin.stop()
