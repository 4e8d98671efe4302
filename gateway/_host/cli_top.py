"""``otelgw top``: a live terminal dashboard of a running gateway, over its admin endpoint.

Built on ``rich`` (tables, colours and a live-refreshing screen; no application framework needed for one
screen). Keys are read from the terminal in cbreak mode: up/down (or k/j) select an alert, ``s`` silences the
selected alert's label set for an hour, ``r`` resolves it, ``q`` quits. ``--once`` prints one snapshot and exits,
as a table or as JSON (``{"stats": <GET /api/stats>, "alerts": [...]}``) for scripts and tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway._host.cli_admin import AdminClient, add_admin_options, alerts_summary

__all__ = ["add_parser", "render", "run", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "warning": "yellow", "info": "cyan"}


def add_parser(commands: Any) -> None:
    top = commands.add_parser("top", help="live dashboard of a running gateway (pipelines, drops, KPIs, alerts)")
    add_admin_options(top)
    top.add_argument("--once", action="store_true", help="print one snapshot and exit")
    top.add_argument("--output", "-o", choices=("table", "json"), default="table",
                     help="with --once: table (default) or json")
    top.add_argument("--interval", type=float, default=1.0, metavar="SECONDS", help="refresh period (default 1)")


def sparkline(values: list[float], width: int = 24) -> str:
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    return "".join(_BARS[0] if span == 0 else _BARS[min(int((v - low) / span * 8), 7)] for v in values)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    value = float(value)
    if abs(value) >= 1e6:
        return f"{value / 1e6:.1f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _unit(unit: str) -> str:
    """A KPI's unit as a reader says it: UCUM's "1" (a ratio) is no unit, "{contact}" is contacts' count."""
    if unit == "1":
        return ""
    return unit[1:-1] if unit.startswith("{") and unit.endswith("}") else unit


def _mib(value: Any) -> str:
    return "-" if value is None else f"{value / 1048576:.0f} MiB"


def fetch(client: AdminClient) -> dict[str, Any]:
    stats = client.call("GET", "/api/stats")
    try:
        alerts = client.call("GET", "/api/alerts")["alerts"]
    except SystemExit as exc:  # no alerts processor in this configuration: the route is not there
        if ": 404:" not in str(exc):
            raise
        alerts = None
    return {"stats": stats, "alerts": alerts}


def _gateway(stats: dict[str, Any]) -> Text:
    g = stats["gateway"]
    text = Text()
    text.append("healthy" if g["healthy"] else "UNHEALTHY", style="bold green" if g["healthy"] else "bold red")
    text.append(f"  up {g['uptime_s']:.0f}s  RSS {_mib(g['rss_bytes'])}")
    if g.get("limit_bytes"):
        share = g["rss_bytes"] / g["soft_limit_bytes"] if g.get("soft_limit_bytes") else 0.0
        style = "bold red" if share >= 1 else "yellow" if share >= 0.8 else ""
        text.append(f" (soft {_mib(g['soft_limit_bytes'])}, hard {_mib(g['limit_bytes'])})", style=style)
    text.append(f"  loop lag {g['loop_lag_ms']:.1f} ms (max {g['loop_lag_max_ms']:.1f})")
    text.append(f"  config generation {g['config_generation']}")
    if g.get("taps_attached"):
        text.append(f"  taps attached {g['taps_attached']}", style="yellow")
    return text


def _components(stats: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="pipelines", title_justify="left")
    for column in ("component", "kind", "signals"):
        table.add_column(column, no_wrap=True)
    for column in ("in/s", "out/s", "in", "out", "refused", "dropped", "queue", "latency", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("status")
    components = stats["components"]
    busiest: Any = max(components, key=lambda c: c["in_per_s"] or 0.0, default=None)
    for c in components:
        dropped = " ".join(f"{reason}={_num(n)}" for reason, n in sorted(c["dropped"].items())) or "0"
        failing = c["status"] != "ok" or (c["errors_total"] or 0) > 0
        style = "bold red" if c["status"] != "ok" else "yellow" if c["dropped_per_s"] or failing else \
            "bold" if c is busiest and (c["in_per_s"] or 0) > 0 else ""
        queue = f"{_num(c['queue_size'])}/{_num(c['queue_capacity'])}" if c["queue_capacity"] else "-"
        latency = "-" if c["latency_ms"] is None else f"{c['latency_ms']:.1f}ms"
        status = c["status"] + (f": {c['error']}" if c.get("error") else "")
        table.add_row(c["id"], c["kind"], ",".join(c["signals"]), _num(c["in_per_s"]), _num(c["out_per_s"]),
                      _num(c["in_total"]), _num(c["out_total"]), _num(c["refused_total"]), dropped, queue,
                      latency, _num(c["errors_total"]), status, style=style)
    return table


def _kpis(stats: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="business KPIs", title_justify="left")
    table.add_column("kpi", no_wrap=True)
    table.add_column("labels")
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("last minutes", no_wrap=True)
    for k in stats["kpis"]:
        table.add_row(k["name"], k["labels"], f"{_num(k['value'])} {_unit(k['unit'])}".strip(),
                      sparkline(k["history"]))
    if not stats["kpis"]:
        table.add_row("(no kpi connector has flushed yet)", "", "", "")
    return table


def _alerts(alerts: list[dict[str, Any]] | None, selected: int) -> Table:
    title = "alerts" if alerts is None else f"alerts: {alerts_summary(alerts)}"
    table = Table(box=box.SIMPLE_HEAD, expand=True, title=title, title_justify="left",
                  caption="up/down select   s silence 1h   r resolve   q quit", caption_justify="left")
    for column in ("", "alert", "severity", "state", "value", "since", "labels"):
        table.add_column(column, no_wrap=column != "labels")
    if alerts is None:
        table.add_row("", "(no alerts processor in this configuration)", "", "", "", "", "")
        return table
    for i, a in enumerate(alerts):
        labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k not in ("alertname", "severity"))
        state = a["state"] + (" (silenced)" if a.get("silenced") else "")
        table.add_row(">" if i == selected else "", a["alertname"], a["severity"], state,
                      _num(a["value"]) if isinstance(a["value"], int | float) else str(a["value"]),
                      a.get("fired_at") or a.get("active_at") or "", labels,
                      style=("reverse " if i == selected else "") + _SEVERITY_STYLE.get(a["severity"], ""))
    return table


def _errors(stats: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, title="recent errors", title_justify="left")
    for column in ("time", "level", "where", "message"):
        table.add_column(column, no_wrap=column != "message")
    for e in list(stats["errors"])[-5:]:
        table.add_row(e["ts"], e["level"], e.get("component") or e["logger"], e["msg"])
    return table


def render(snapshot: dict[str, Any], selected: int = 0, *, url: str = "") -> Group:
    stats = snapshot["stats"]
    return Group(Panel(_gateway(stats), title=f"otelgw {url}", title_align="left"), _components(stats),
                 _kpis(stats), _alerts(snapshot["alerts"], selected), _errors(stats))


@contextlib.contextmanager
def _keys() -> Iterator[Any]:
    """Single key presses from the terminal (cbreak mode), restored on exit; no keys when stdin is not a tty."""
    if not sys.stdin.isatty():
        def wait(timeout: float) -> str:
            time.sleep(timeout)
            return ""
        yield wait
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read(timeout: float) -> str:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return ""
        try:
            data = os.read(fd, 8)
        except OSError:  # the terminal went away (EIO)
            data = b""
        if not data:  # end of input: nobody is left to press q, so act as if they had (never spin on EOF)
            return "q"
        key = data.decode(errors="replace")
        return {"\x1b[A": "up", "\x1b[B": "down", "k": "up", "j": "down"}.get(key, key)

    try:
        yield read
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _act(client: AdminClient, key: str, alert: dict[str, Any]) -> str:
    if key == "r":
        client.call("POST", "/api/alerts/resolve", {"id": alert["id"]})
        return f"resolved {alert['alertname']}"
    client.call("POST", "/api/alerts/silences", {"matchers": alert["labels"], "duration": "1h",
                                                  "comment": "silenced from otelgw top"})
    return f"silenced {alert['alertname']} for 1h"


def run(args: argparse.Namespace) -> int:
    client = AdminClient(args, "top")
    if args.once:
        snapshot = fetch(client)
        if args.output == "json":
            print(json.dumps(snapshot, indent=2))
        else:
            Console(width=max(Console().width, 140)).print(render(snapshot, -1, url=client.url))
        return 0
    try:
        return _live(client, args.interval)
    except KeyboardInterrupt:  # Ctrl-C: the terminal is restored by the context managers on the way out
        return 0


def _live(client: AdminClient, interval: float) -> int:
    selected = 0
    message = ""
    console = Console()
    with _keys() as read_key, Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            try:
                snapshot = fetch(client)
            except SystemExit as exc:
                live.update(Panel(Text(str(exc), style="bold red"), title="otelgw top"), refresh=True)
                if read_key(interval) == "q":
                    return 1
                continue
            alerts = snapshot["alerts"] or []
            selected = min(selected, max(len(alerts) - 1, 0))
            view = render(snapshot, selected, url=client.url)
            live.update(Group(view, Text(message, style="green")) if message else view, refresh=True)
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                key = read_key(left)
                if key in ("q", "\x03"):
                    return 0
                if key in ("up", "down") and alerts:
                    selected = (selected + (1 if key == "down" else -1)) % len(alerts)
                    break
                if key in ("s", "r") and alerts:
                    try:
                        message = _act(client, key, alerts[selected])
                    except SystemExit as exc:
                        message = str(exc)
                    break
