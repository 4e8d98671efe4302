"""``otelgw alerts list|resolve|silence|rules``: operate the alerts processor over the admin endpoint."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.admin import default_token_file

__all__ = ["add_parser", "admin_token", "run"]


def add_parser(commands: Any) -> None:
    alerts = commands.add_parser("alerts", help="list, resolve and silence alerts of a running gateway")
    alerts.add_argument("--admin", default="http://127.0.0.1:13134", metavar="URL",
                        help="the gateway's admin endpoint (default http://127.0.0.1:13134)")
    alerts.add_argument("--token", default=None,
                        help="bearer token (default: $OTELGW_ADMIN_TOKEN, else the token file the gateway wrote)")
    alerts.add_argument("--token-file", default=None, metavar="FILE",
                        help="file holding the token (default: <state dir>/admin-<port>.token, as the gateway "
                             "writes it when service::admin::token is not set)")
    sub = alerts.add_subparsers(dest="alerts_command", required=True)
    listing = sub.add_parser("list", help="current alerts")
    listing.add_argument("--state", choices=("pending", "firing", "resolved"))
    listing.add_argument("--severity", choices=("info", "warning", "high", "critical"))
    listing.add_argument("--json", action="store_true", help="print the JSON answer")
    resolve = sub.add_parser("resolve", help="resolve an alert by id (its fingerprint)")
    resolve.add_argument("id")
    silence = sub.add_parser("silence", help="mute notifications of matching alerts for a while")
    silence.add_argument("matchers", nargs="+", metavar="LABEL=VALUE")
    silence.add_argument("--for", dest="duration", required=True, metavar="DURATION", help="e.g. 30m, 2h")
    silence.add_argument("--comment", default="")
    rules = sub.add_parser("rules", help="every rule with its current value")
    rules.add_argument("--json", action="store_true")


def admin_token(admin_url: str, token: str | None = None, token_file: str | None = None) -> str:
    """The token for the admin endpoint at ``admin_url``: given, else $OTELGW_ADMIN_TOKEN, else the file the
    gateway wrote (``--token-file``, or the default file for the URL's port). Empty when there is none."""
    if token is not None:
        return token
    if os.environ.get("OTELGW_ADMIN_TOKEN"):
        return os.environ["OTELGW_ADMIN_TOKEN"]
    if token_file is not None:
        path = Path(token_file)
    else:
        port = urlsplit(admin_url).port
        if port is None:
            return ""
        path = default_token_file(port)
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    token = admin_token(args.admin, args.token, args.token_file)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.admin.rstrip("/") + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        hint = ""
        if exc.code == 401 and not token:
            hint = (" (no token found: pass --token or --token-file, or set OTELGW_ADMIN_TOKEN; a gateway without "
                    "service::admin::token writes one to <state dir>/admin-<port>.token)")
        raise SystemExit(f"otelgw alerts: {exc.code}: {message}{hint}") from None
    except urllib.error.URLError as exc:
        raise SystemExit(f"otelgw alerts: cannot reach {args.admin}: {exc.reason}") from None


def _table(rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _value(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> int:
    command = args.alerts_command
    if command == "list":
        query = "&".join(f"{k}={v}" for k, v in (("state", args.state), ("severity", args.severity)) if v)
        answer = _request(args, "GET", "/api/alerts" + (f"?{query}" if query else ""))
        if args.json:
            print(json.dumps(answer, indent=2))
            return 0
        rows = [["ID", "ALERT", "SEVERITY", "STATE", "VALUE", "SINCE", "LABELS"]]
        for a in answer["alerts"]:
            labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items())
                              if k not in ("alertname", "severity"))
            state = a["state"] + (" (silenced)" if a.get("silenced") else "")
            rows.append([a["id"], a["alertname"], a["severity"], state, _value(a["value"]),
                         a["fired_at"] or a["active_at"], labels])
        _table(rows)
        return 0
    if command == "resolve":
        answer = _request(args, "POST", "/api/alerts/resolve", {"id": args.id})
        print(f"resolved {answer['resolved']['alertname']} ({args.id})")
        return 0
    if command == "silence":
        matchers = {}
        for item in args.matchers:
            key, sep, value = item.partition("=")
            if not sep or not key:
                print(f"otelgw alerts silence: {item!r} is not LABEL=VALUE", file=sys.stderr)
                return 2
            matchers[key] = value
        answer = _request(args, "POST", "/api/alerts/silences",
                          {"matchers": matchers, "duration": args.duration, "comment": args.comment})
        print(f"silence {answer['silence']['id']} until {answer['silence']['until']}")
        return 0
    answer = _request(args, "GET", "/api/alerts/rules")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
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
    _table(rows)
    return 0
