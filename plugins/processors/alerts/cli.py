"""``otelgw alerts list|resolve|silence|silences|rules``: operate the alerts processor over the admin endpoint.

The admin options (``--admin``, ``--token``, ``--token-file``) work before or after the subcommand, and every
listing takes ``--output table|json|summary``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gateway import AdminClient, CliCommand, add_admin_options, alerts_summary

__all__ = ["COMMAND", "add_arguments", "run"]

OUTPUTS = ("table", "json", "summary")


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", choices=OUTPUTS, default=argparse.SUPPRESS,
                        help="table (default), json (the API's answer) or summary (one line of counts)")


def add_arguments(alerts: argparse.ArgumentParser) -> None:
    add_admin_options(alerts)
    alerts.add_argument("--output", "-o", choices=OUTPUTS, default="table",
                        help="table (default), json (the API's answer) or summary (one line of counts)")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        add_admin_options(parser, suppress=True)
        _output(parser)
        return parser

    listing = command("list", "current alerts")
    listing.add_argument("--state", choices=("pending", "firing", "resolved"))
    listing.add_argument("--severity", choices=("info", "warning", "high", "critical"))
    listing.add_argument("--json", action="store_const", const="json", dest="output", default=argparse.SUPPRESS,
                         help="the same as --output json")
    resolve = command("resolve", "resolve an alert by id (its fingerprint)")
    resolve.add_argument("id")
    silence = command("silence", "mute notifications of matching alerts for a while")
    silence.add_argument("matchers", nargs="+", metavar="LABEL=VALUE")
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 30m, 2h")
    silence.add_argument("--comment", default="")
    silences = command("silences", "list the active silences, or expire one")
    silences.add_argument("--expire", metavar="ID", help="end this silence now")
    rules = command("rules", "every rule with its current value")
    rules.add_argument("--json", action="store_const", const="json", dest="output", default=argparse.SUPPRESS,
                       help="the same as --output json")


def _table(rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _value(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _print(args: argparse.Namespace, answer: Any, rows: list[list[str]], summary: str) -> None:
    if args.output == "json":
        print(json.dumps(answer, indent=2))
    elif args.output == "summary":
        print(summary)
    else:
        _table(rows)


def _list(args: argparse.Namespace, client: AdminClient) -> int:
    query = "&".join(f"{k}={v}" for k, v in (("state", args.state), ("severity", args.severity)) if v)
    answer = client.call("GET", "/api/alerts" + (f"?{query}" if query else ""))
    rows = [["ID", "ALERT", "SEVERITY", "STATE", "VALUE", "SINCE", "LABELS"]]
    for a in answer["alerts"]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity"))
        state = a["state"] + (" (silenced)" if a.get("silenced") else "")
        rows.append([a["id"], a["alertname"], a["severity"], state, _value(a["value"]),
                     a["fired_at"] or a["active_at"], labels])
    _print(args, answer, rows, alerts_summary(answer["alerts"]))
    return 0


def _silences(args: argparse.Namespace, client: AdminClient) -> int:
    if args.expire:
        answer = client.call("POST", "/api/alerts/silences/expire", {"id": args.expire})
        if args.output == "json":
            print(json.dumps(answer, indent=2))
        else:
            print(f"expired silence {args.expire}")
        return 0
    answer = client.call("GET", "/api/alerts/silences")
    rows = [["ID", "UNTIL", "MATCHERS", "COMMENT"]]
    for s in answer["silences"]:
        rows.append([s["id"], s["until"], ",".join(f"{k}={v}" for k, v in sorted(s["matchers"].items())),
                     s["comment"]])
    _print(args, answer, rows, f"{len(answer['silences'])} active silences")
    return 0


def _rules(args: argparse.Namespace, client: AdminClient) -> int:
    answer = client.call("GET", "/api/alerts/rules")
    rows = [["RULE", "KIND", "SEVERITY", "CONDITION", "CURRENT"]]
    for r in answer["rules"]:
        if r["kind"] == "slo":
            condition = f"objective {r['objective']}"
            current = ", ".join(f"burn {w}={_value(v)}" for w, v in r["burn_rates"].items()) or "-"
            current += f"; budget left {_value(r['error_budget_remaining'])}"
            rows.append([r["name"], "slo", "-", condition, current])
            continue
        condition = f"{r['aggregation']}({r['metric']}) {r['op']} {_value(r['threshold'])}"
        values = [f"{','.join(f'{k}={v}' for k, v in x['labels'].items()) or '*'}={_value(x['value'])}"
                  for x in r["values"]]
        rows.append([r["name"], "rule", r["severity"], condition, " ".join(values) or "-"])
    slos = sum(1 for r in answer["rules"] if r["kind"] == "slo")
    _print(args, answer, rows, f"{len(answer['rules']) - slos} rules, {slos} SLOs")
    return 0


def run(args: argparse.Namespace) -> int:
    client = AdminClient(args, "alerts")
    command = args.alerts_command
    if command == "list":
        return _list(args, client)
    if command == "silences":
        return _silences(args, client)
    if command == "rules":
        return _rules(args, client)
    if command == "resolve":
        answer = client.call("POST", "/api/alerts/resolve", {"id": args.id})
        if args.output == "json":
            print(json.dumps(answer, indent=2))
        else:
            print(f"resolved {answer['resolved']['alertname']} ({args.id})")
        return 0
    matchers = {}
    for item in args.matchers:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"otelgw alerts silence: {item!r} is not LABEL=VALUE", file=sys.stderr)
            return 2
        matchers[key] = value
    answer = client.call("POST", "/api/alerts/silences",
                         {"matchers": matchers, "duration": args.duration, "comment": args.comment})
    if args.output == "json":
        print(json.dumps(answer, indent=2))
    else:
        print(f"silence {answer['silence']['id']} until {answer['silence']['until']}")
    return 0


COMMAND = CliCommand("alerts", "list, resolve and silence alerts of a running gateway", add_arguments, run)
