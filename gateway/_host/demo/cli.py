"""``otelgw demo``: a gateway with the shipped packs, realistic traffic, and incidents that trip their alerts.

Without ``--endpoint`` the demo starts ``otelgw run`` on the KPI packs, the alert packs, the redaction pack and
the tail-sampling pack (from the ``configs/`` directory of a source checkout), with the admin endpoint on and the
sampled traces sent to a backend of the demo's own (``backend``) that counts what tail sampling kept, waits until
the gateway listens, then sends traffic (``traffic``) once a second. With ``--top`` it then runs ``otelgw top``
in the terminal while the traffic plays, and its own messages go to a log file instead.

The timeline, in demo time (wall time x ``--speed``): two quiet minutes, then a 30-minute incident that trips
at least one alert of every pack, then ten quiet minutes in which the alerts resolve, and again. ``--speed N``
runs the packs' windows and ``for:`` durations N times faster (``speed``), so ``--speed 10`` shows every pack's
alert within a few minutes, and a test's ``--speed 60`` within seconds.

The ports are those of the packs, changed by the same environment variables (``OTELGW_GRPC_ENDPOINT``,
``OTELGW_HTTP_ENDPOINT``, ``OTELGW_PROMETHEUS_ENDPOINT``, ``OTELGW_METRICS_ADDRESS``, ``OTELGW_HEALTH_ENDPOINT``)
plus ``OTELGW_ADMIN_ENDPOINT`` (default 127.0.0.1:13134). Ctrl-C (or SIGTERM) stops the traffic, flushes what
the SDK holds, then stops the gateway with SIGTERM and waits for it to drain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from gateway._host.admin import default_token_file
from gateway._host.children import started_by_me
from gateway._host.cli_admin import AdminClient, add_admin_options

from . import SCENARIOS
from .backend import TraceBackend
from .speed import scaled_copy

__all__ = ["add_parser", "run"]

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
#: The packs the demo's gateway runs, merged in this order.
PACKS = ("kpi/gateway.yaml", "kpi/callcenter.yaml", "kpi/llm_agent.yaml", "kpi/crm.yaml", "alerts/api.yaml",
         "alerts/callcenter.yaml", "alerts/llm_agent.yaml", "alerts/crm.yaml", "redaction.yaml",
         "tail_sampling.yaml")
#: The demo's own fragment: the admin endpoint, for otelgw top, otelgw alerts and the status page.
FRAGMENT = 'service:\n  admin: {endpoint: "${env:OTELGW_ADMIN_ENDPOINT:-127.0.0.1:13134}"}\n'
#: Timeline in demo seconds: quiet, incident, quiet again (then it repeats).
QUIET_FIRST, INCIDENT, QUIET = 120.0, 1800.0, 600.0
#: How often (demo seconds, so wall seconds x --speed; at least every 5 wall seconds) the demo says what tail
#: sampling kept.
SAMPLING_REPORT = 60.0


def add_parser(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="start a gateway with the KPI and alert packs and play traffic with incidents into it",
        description="Start otelgw with the shipped KPI, alert and redaction packs, and send it the traffic of a "
                    "call centre, an AI customer-service agent and a CRM (OpenTelemetry SDK, OTLP/gRPC), with "
                    "incidents that trip at least one alert of every pack. Ctrl-C stops everything.")
    demo.add_argument("scenario", nargs="?", default="all", choices=(*SCENARIOS, "all"),
                      help="which traffic to play (default all)")
    demo.add_argument("--endpoint", metavar="HOST:PORT",
                      help="send to this running gateway (OTLP/gRPC) instead of starting one")
    demo.add_argument("--rate", type=float, default=1.0,
                      help="traffic multiplier (default 1: about 25 spans and 20 events a second)")
    demo.add_argument("--speed", type=float, default=1.0,
                      help="run the packs' windows, for: durations and the incident timeline N times faster "
                           "(default 1: as shipped)")
    demo.add_argument("--duration", type=float, default=0.0, metavar="SECONDS",
                      help="stop after SECONDS (default: run until Ctrl-C)")
    demo.add_argument("--seed", type=int, help="random seed, for the same traffic every run")
    demo.add_argument("--top", action="store_true",
                      help="show otelgw top while the demo plays (q or Ctrl-C quits both); the demo's own "
                           "messages then go to a log file it names")
    add_admin_options(demo)


def _incident(demo_seconds: float) -> bool:
    if demo_seconds < QUIET_FIRST:
        return False
    return (demo_seconds - QUIET_FIRST) % (INCIDENT + QUIET) < INCIDENT


def _host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return (host.strip("[]") or "127.0.0.1").replace("localhost", "127.0.0.1"), int(port)


def _listening(endpoint: str) -> bool:
    try:
        with socket.create_connection(_host_port(endpoint), timeout=0.5):
            return True
    except OSError:
        return False


class _Gateway:
    """The ``otelgw run`` child: its configs (scaled copies when ``speed`` != 1) and its log in ``workdir``."""

    def __init__(self, workdir: Path, speed: float, backend: str) -> None:
        if not (CONFIGS / PACKS[0]).is_file():
            raise SystemExit(f"otelgw demo: the packs are not in {CONFIGS}; run it from a source checkout "
                             "(make demo), or pass --endpoint to send to a running gateway")
        files = [CONFIGS / p if speed == 1 else scaled_copy(CONFIGS / p, workdir, speed) for p in PACKS]
        fragment = workdir / "demo.yaml"
        fragment.write_text(FRAGMENT)
        self.configs = [*files, fragment]
        self.log_path = workdir / "gateway.log"
        env = dict(os.environ)
        # The redaction pack hashes personal data with a key; the demo's lives as long as its gateway.
        env.setdefault("REDACTION_KEY", secrets.token_hex(32))
        env["OTELGW_BACKEND"] = backend  # where the tail-sampling pack sends the traces it keeps
        command = [sys.executable, "-m", "gateway", "run"]
        for path in self.configs:
            command += ["--config", str(path)]
        with self.log_path.open("wb") as log:
            # Its own session: a Ctrl-C in the terminal reaches the demo, which stops the traffic first.
            # It ends if the demo is killed (gateway._host.children).
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=started_by_me(env), start_new_session=True)

    def wait_listening(self, endpoints: list[str], stop: threading.Event, limit: float = 120.0) -> bool:
        deadline = time.monotonic() + limit
        while not all(_listening(e) for e in endpoints):
            if self.process.poll() is not None or time.monotonic() > deadline or stop.wait(0.2):
                return False
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 35.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


class _AlertWatch:
    """Prints alerts as they start firing and resolve (polls /api/alerts; quiet while the admin endpoint is not
    answering)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = AdminClient(args, "demo")
        self.firing: dict[str, dict[str, Any]] = {}

    def poll(self) -> None:
        if not self.client.token:  # a gateway that generates its token may not have written it yet
            self.client = AdminClient(self.args, "demo")
        try:
            alerts = self.client.call("GET", "/api/alerts", timeout=5.0)["alerts"]
        except SystemExit:
            return
        now = {a["id"]: a for a in alerts if a["state"] == "firing"}
        for key, alert in now.items():
            if key not in self.firing:
                summary = alert.get("annotations", {}).get("summary", "")
                _say(f"alert firing:   {alert['severity']:<8} {alert['alertname']} ({alert['processor']}) {summary}")
        for key, alert in self.firing.items():
            if key not in now:
                _say(f"alert resolved: {alert['severity']:<8} {alert['alertname']} ({alert['processor']})")
        self.firing = now


#: Where the demo's messages go: the terminal, or a log file while ``otelgw top`` holds the terminal.
_out: list[TextIO] = [sys.stdout]


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=_out[0], flush=True)


def _otelgw() -> str:
    """How the user runs this otelgw: ``.venv/bin/otelgw`` after ``make demo``, plain ``otelgw`` on the PATH."""
    beside = Path(sys.executable).parent / "otelgw"
    if not beside.is_file() or shutil.which("otelgw") == str(beside):
        return "otelgw"
    relative = os.path.relpath(beside)
    return relative if not relative.startswith("..") else str(beside)


def _welcome(admin: str, grpc: str, gateway: _Gateway | None, speed: float) -> None:
    port = _host_port(admin.split("//", 1)[-1])[1]
    otelgw = _otelgw()
    lines = ["", "otelgw demo is running. Open:",
             f"  status page   {admin}/ui   (it asks for the admin token: the text of "
             f"{default_token_file(port)})",
             f"  dashboard     {otelgw} top --admin {admin}",
             f"  alerts        {otelgw} alerts list --admin {admin}",
             f"  KPIs          curl -s http://{os.environ.get('OTELGW_PROMETHEUS_ENDPOINT', 'localhost:8889')}"
             "/metrics | grep -E '^(callcenter|llm|crm)_'",
             f"Traffic goes to {grpc} (OTLP/gRPC). Incidents start after {QUIET_FIRST / speed:.0f} s and last "
             f"{INCIDENT / speed / 60:.1f} min" + (f" (--speed {speed:g}: the packs' windows and for: durations "
                                                  f"are {speed:g}x shorter)" if speed != 1 else "") + "."]
    if gateway is not None:
        lines.append(f"Gateway pid {gateway.process.pid}, log {gateway.log_path}. Ctrl-C stops everything.")
    print("\n".join(lines) + "\n", flush=True)


def run(args: argparse.Namespace) -> int:
    if args.speed <= 0 or args.rate <= 0:
        raise SystemExit("otelgw demo: --speed and --rate must be > 0")
    try:
        from . import traffic  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"otelgw demo sends its traffic with the OpenTelemetry SDK, which is not installed "
                         f"({exc}): pip install 'otelgw[demo]'") from None
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-demo-"))
    gateway: _Gateway | None = None
    backend: TraceBackend | None = None
    try:
        if args.endpoint:
            grpc = args.endpoint
        else:
            admin_endpoint = os.environ.get("OTELGW_ADMIN_ENDPOINT", "127.0.0.1:13134")
            args.admin = f"http://{admin_endpoint}"
            grpc = os.environ.get("OTELGW_GRPC_ENDPOINT", "localhost:4317")
            taken = [e for e in (grpc, admin_endpoint) if _listening(e)]
            if taken:  # something else would get the traffic, and the demo's gateway could not start
                print(f"otelgw demo: {', '.join(taken)} already in use (a gateway of make run, or another demo?); "
                      "stop it, or move the demo with OTELGW_GRPC_ENDPOINT, OTELGW_ADMIN_ENDPOINT and the other "
                      "OTELGW_*_ENDPOINT variables, or send to it with --endpoint", file=sys.stderr)
                return 1
            backend = TraceBackend()
            backend.start()
            gateway = _Gateway(workdir, args.speed, backend.endpoint)
            _say(f"starting the gateway (pid {gateway.process.pid}) with {', '.join(PACKS)}")
            if not gateway.wait_listening([grpc, admin_endpoint], stop):
                if stop.is_set():
                    return 0
                print(f"otelgw demo: the gateway did not start; its log ends with:\n{gateway.log_tail()}",
                      file=sys.stderr)
                return 1
        _welcome(args.admin.rstrip("/"), grpc, gateway, args.speed)
        if args.top and not sys.stdout.isatty():
            _say("--top needs a terminal: playing without otelgw top")
        elif args.top:
            return _play_under_top(args, scenarios, grpc, gateway, backend, stop)
        return _play(args, scenarios, grpc, gateway, backend, stop)
    finally:
        # Our handlers stay until the gateway has drained: a second Ctrl-C must not leave it running alone.
        if gateway is not None:
            code = gateway.stop()
            _say(f"gateway stopped (exit code {code})")
        if backend is not None:
            backend.stop()
        if _out[0] is not sys.stdout:
            _out[0].close()
            _out[0] = sys.stdout
        shutil.rmtree(workdir, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _play_under_top(args: argparse.Namespace, scenarios: tuple[str, ...], grpc: str, gateway: _Gateway | None,
                    backend: TraceBackend | None, stop: threading.Event) -> int:
    """The traffic in a thread, ``otelgw top`` in the terminal; whichever ends first ends the other."""
    log = Path(tempfile.gettempdir()) / f"otelgw-demo-{os.getpid()}.log"
    print(f"otelgw top takes the terminal now (q quits the demo); the demo's messages go to {log}", flush=True)
    _out[0] = log.open("w", encoding="utf-8")
    result: list[int] = []
    player = threading.Thread(target=lambda: result.append(_play(args, scenarios, grpc, gateway, backend, stop)),
                              name="demo-traffic", daemon=True)
    player.start()
    command = [sys.executable, "-m", "gateway", "top", "--admin", args.admin]
    if args.token_file:
        command += ["--token-file", args.token_file]
    env = dict(os.environ)
    if args.token:  # through the environment, not the command line that ps shows
        env["OTELGW_ADMIN_TOKEN"] = args.token
    # Same session and terminal: Ctrl-C reaches it as it reaches the demo; and it ends if the demo is killed.
    top = subprocess.Popen(command, env=started_by_me(env))
    while top.poll() is None and player.is_alive():
        stop.wait(0.2)
    stop.set()
    if top.poll() is None:
        top.terminate()
    top.wait()
    player.join()
    print(f"otelgw demo stopped; its messages are in {log}", flush=True)
    return result[0] if result else 0


def _play(args: argparse.Namespace, scenarios: tuple[str, ...], grpc: str, gateway: _Gateway | None,
          backend: TraceBackend | None, stop: threading.Event) -> int:
    from .traffic import Traffic  # the OpenTelemetry SDK: checked before anything started, in run()

    traffic = Traffic(grpc, scenarios, args.rate, args.seed)
    watch = _AlertWatch(args)
    started = time.monotonic()
    report_every = max(5.0, SAMPLING_REPORT / args.speed)
    next_report = started + report_every
    incident = False
    try:
        next_tick = started
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if args.duration and elapsed >= args.duration:
                break
            if gateway is not None and gateway.process.poll() is not None:
                print(f"otelgw demo: the gateway exited ({gateway.process.returncode}); its log ends with:\n"
                      f"{gateway.log_tail()}", file=sys.stderr)
                return 1
            now_incident = _incident(elapsed * args.speed)
            if now_incident != incident:
                incident = now_incident
                _say("incident: agents logged out, the model provider fails and slows down, a CRM workflow and "
                     "customers-api fail" if incident else "incident over: traffic is back to normal")
            traffic.tick(incident)
            watch.poll()
            if backend is not None and time.monotonic() >= next_report:
                next_report += report_every
                spans, traces, failed = backend.take()
                _say(f"tail sampling kept {traces} traces ({failed} with an error, {spans} spans) in the last "
                     f"{report_every:.0f} s: every failed or slow trace, whole, and 10% of the rest")
            next_tick += 1.0
            stop.wait(max(0.0, next_tick - time.monotonic()))
    finally:
        _say("stopping: flushing the traffic")
        traffic.shutdown()
    return 0
