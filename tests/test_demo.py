"""``otelgw demo`` as a user runs it, in real processes: it starts a gateway with the shipped KPI, alert and
redaction packs and plays its traffic with incidents; every alert pack trips at least one alert, which
``otelgw alerts list`` and ``otelgw top --once`` show; SIGINT (Ctrl-C) stops the traffic and the gateway.

``--speed 60`` runs the packs' windows and ``for:`` durations 60 times faster, so the shipped ``for: 15m`` of the
CRM pack's workflow alert takes 15 s here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import free_port

ROOT = Path(__file__).resolve().parent.parent
PACKS = sorted(f"alerts/{p.stem}" for p in (ROOT / "configs" / "alerts").glob("*.yaml"))


def otelgw(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def started_gateway(output: list[str]) -> int | None:
    """The gateway's pid, from the demo's "starting the gateway (pid N)" line."""
    for line in output:
        if "starting the gateway (pid " in line:
            return int(line.split("(pid ", 1)[1].split(")", 1)[0])
    return None


def kept_failed(line: str) -> int:
    """From the demo's "tail sampling kept N traces (M with an error, ...)" line, M (0 for other lines)."""
    if "tail sampling kept " not in line:
        return 0
    return int(line.split("(", 1)[1].split(" with an error", 1)[0])


def firing_by_pack(alerts: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for alert in alerts:
        if alert["state"] == "firing":
            out.setdefault(alert["processor"], set()).add(alert["alertname"])
    return out


def test_demo_trips_an_alert_of_every_pack_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # the pack processors the demo's alerts must come from are the shipped packs' own
    shipped = {pid for p in (ROOT / "configs" / "alerts").glob("*.yaml")
               for pid in yaml.safe_load(p.read_text())["processors"]}
    assert shipped == set(PACKS)
    ports = {name: free_port() for name in ("grpc", "http", "prometheus", "metrics", "health", "admin")}
    env = {**os.environ, "OTELGW_STATE_DIR": str(tmp_path)}
    for name in ("grpc", "http", "prometheus", "health", "admin"):
        env[f"OTELGW_{name.upper()}_ENDPOINT"] = f"127.0.0.1:{ports[name]}"
    env["OTELGW_METRICS_ADDRESS"] = f"127.0.0.1:{ports['metrics']}"
    admin = f"http://127.0.0.1:{ports['admin']}"
    demo = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "all", "--speed", "60", "--seed", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    output: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: output.extend(iter(demo.stdout.readline, "")), daemon=True)
    reader.start()
    gateway_pid = None
    try:
        deadline = time.monotonic() + 180  # guards against a hang; how fast it goes is not what is tested
        firing: dict[str, set[str]] = {}
        while set(firing) != set(PACKS):
            assert demo.poll() is None, "the demo exited:\n" + "".join(output)
            assert time.monotonic() < deadline, f"alerts firing: {firing}\n" + "".join(output)
            time.sleep(1.0)
            if not any("otelgw demo is running" in line for line in output):
                continue
            firing = firing_by_pack(json.loads(otelgw("alerts", "list", "--admin", admin, "--output", "json",
                                                      env=env))["alerts"])
        gateway_pid = started_gateway(output)
        # the demo told the user what to open, and says what fires as it fires (it looks on its own schedule, so
        # a line may come a moment after the admin endpoint already lists the alert)
        while not all(f"({pack})" in "".join(output) for pack in PACKS) and time.monotonic() < deadline:
            time.sleep(0.5)
        text = "".join(output)
        assert f"{admin}/ui" in text and "otelgw top" in text
        for pack in PACKS:
            assert f"({pack})" in text
        # the same alerts in otelgw top's snapshot, next to the KPIs the packs derive
        top = json.loads(otelgw("top", "--once", "--output", "json", "--admin", admin, env=env))
        assert set(firing_by_pack(top["alerts"])) == set(PACKS)
        assert {k["name"] for k in top["stats"]["kpis"]} >= {"callcenter.queue.depth", "llm.requests",
                                                             "crm.workflow.runs"}
        # the admin token is a secret: the demo names its file, never its text
        assert (tmp_path / f"admin-{ports['admin']}.token").read_text().strip() not in text

        # what tail sampling kept reached the demo's backend: the incident's failed traces among them
        deadline = time.monotonic() + 60
        while not any(kept_failed(line) for line in list(output)):
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(1.0)

        demo.send_signal(signal.SIGINT)
        assert demo.wait(60) == 0, "".join(output)
        reader.join(10)
        assert "gateway stopped (exit code 0)" in "".join(output)
        with pytest.raises(ProcessLookupError):
            os.kill(gateway_pid, 0)
    finally:
        if demo.poll() is None:  # the test failed with the demo running: the gateway is its child, in its session
            demo.kill()
            demo.wait()
            gateway_pid = started_gateway(output)
            if gateway_pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(gateway_pid, signal.SIGKILL)


def readme_endpoint_example() -> list[str]:
    """The README's ``otelgw demo ... --endpoint`` line, as arguments."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### The demo", 1)[1].split("\n## ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith("otelgw demo") and "--endpoint" in line)
    return line.split("#", 1)[0].split()


async def test_the_readme_example_sends_only_traffic_to_a_running_gateway(tmp_path: Path) -> None:
    """As in the README, with the sink's port and a 3-second duration: spans and events of the CRM and its APIs
    arrive with the attributes the packs read; no gateway is started; the demo ends by itself."""
    import asyncio

    from gateway.component import Signal
    from gateway.testing.otlp_sink import OtlpSink

    args = readme_endpoint_example()
    assert args[:3] == ["otelgw", "demo", "crm"]
    args[args.index("--endpoint") + 1] = "<sink>"
    args[args.index("--duration") + 1] = "3"
    sink = OtlpSink()
    await sink.start()
    try:
        args[args.index("<sink>")] = sink.grpc_endpoint
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *args[1:], "--admin", f"http://127.0.0.1:{free_port()}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(demo.communicate(), 60)
        finally:
            if demo.returncode is None:
                demo.kill()
                await demo.wait()
        assert demo.returncode == 0, out.decode()
        assert b"starting the gateway" not in out
        services = {next(kv.value.string_value for kv in rs.resource.attributes if kv.key == "service.name")
                    for batch in sink.batches(Signal.TRACES) for rs in batch.resource_spans}
        assert services == {"crm", "customers-api", "inbox-api"}
        spans = {span.name for span in sink.spans()}
        assert "workflow.run" in spans and "GET /customers/{id}" in spans
        events = {record.event_name for batch in sink.batches(Signal.LOGS) for rl in batch.resource_logs
                  for sl in rl.scope_logs for record in sl.log_records}
        assert {"conversation.created", "conversation.first_response"} <= events
    finally:
        await sink.stop()


def test_make_demo_is_the_demo_of_every_pack_sped_up_ten_times() -> None:
    """``make demo`` (the README's first screen) runs what the test above runs, at the README's speed."""
    import shutil

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    done = subprocess.run([make, "-n", "--no-print-directory", "demo"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].endswith("/otelgw demo all --speed ${OTELGW_DEMO_SPEED:-10} --top")
    assert "make demo" in (ROOT / "README.md").read_text().split("\n## ", 1)[0]


def test_a_port_in_use_is_a_clear_error_before_any_gateway_starts(tmp_path: Path) -> None:
    """Another gateway on the demo's OTLP port (make run) would take its traffic: the demo says so and stops."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = f"127.0.0.1:{holder.getsockname()[1]}"
        env = {**os.environ, "OTELGW_STATE_DIR": str(tmp_path), "OTELGW_GRPC_ENDPOINT": taken,
               "OTELGW_ADMIN_ENDPOINT": f"127.0.0.1:{free_port()}"}
        done = subprocess.run([sys.executable, "-m", "gateway", "demo", "--duration", "1"], capture_output=True,
                              text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert f"{taken} already in use" in done.stderr and "OTELGW_GRPC_ENDPOINT" in done.stderr
    assert "starting the gateway" not in done.stdout


def test_top_takes_the_terminal_while_the_demo_plays_and_q_quits_both(tmp_path: Path) -> None:
    """``make demo`` runs ``otelgw demo --top``: in a terminal (a pty here) otelgw top shows the demo's gateway,
    and its q ends the traffic and the gateway too."""
    import pty
    import select

    ports = {name: free_port() for name in ("grpc", "http", "prometheus", "metrics", "health", "admin")}
    env = {**os.environ, "OTELGW_STATE_DIR": str(tmp_path), "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    for name in ("grpc", "http", "prometheus", "health", "admin"):
        env[f"OTELGW_{name.upper()}_ENDPOINT"] = f"127.0.0.1:{ports[name]}"
    env["OTELGW_METRICS_ADDRESS"] = f"127.0.0.1:{ports['metrics']}"
    leader, follower = pty.openpty()
    demo = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "all", "--speed", "60", "--top"],
                            stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True)
    os.close(follower)
    screen = b""

    def read_until(marker: bytes, limit: float) -> None:
        nonlocal screen
        deadline = time.monotonic() + limit
        while marker not in screen:
            assert time.monotonic() < deadline, screen.decode(errors="replace")[-3000:]
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    screen += os.read(leader, 65536)
                except OSError:  # the pty closed: every process holding it exited
                    break

    gateway_pid = None
    try:
        read_until(b"otelgw top takes the terminal", 120)
        gateway_pid = started_gateway(screen.decode(errors="replace").splitlines())
        read_until(b"business KPIs", 60)  # top has the terminal (cbreak mode, so it sees the q) and shows KPIs
        os.write(leader, b"q")
        read_until(b"otelgw demo stopped", 60)  # reading on: a full pty would block top's output, and top
        assert demo.wait(60) == 0, screen.decode(errors="replace")[-3000:]
        assert gateway_pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(gateway_pid, 0)
    finally:
        if demo.poll() is None:  # the demo leads its own process group, otelgw top included
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        gateway_pid = gateway_pid or started_gateway(screen.decode(errors="replace").splitlines())
        if gateway_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(gateway_pid, signal.SIGKILL)
        os.close(leader)


def test_a_killed_demo_takes_its_gateway_with_it_and_prints_no_grpc_fork_noise(tmp_path: Path) -> None:
    """The demo's gateway asks for SIGTERM when the demo dies (even by SIGKILL) and drains; the demo starts it with
    no preexec_fn, so gRPC's fork handlers print nothing ("skipping fork() handlers") among the demo's lines."""
    ports = {name: free_port() for name in ("grpc", "http", "prometheus", "metrics", "health", "admin")}
    env = {**os.environ, "OTELGW_STATE_DIR": str(tmp_path)}
    for name in ("grpc", "http", "prometheus", "health", "admin"):
        env[f"OTELGW_{name.upper()}_ENDPOINT"] = f"127.0.0.1:{ports[name]}"
    env["OTELGW_METRICS_ADDRESS"] = f"127.0.0.1:{ports['metrics']}"
    demo = subprocess.Popen([sys.executable, "-m", "gateway", "demo", "all", "--speed", "60"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert demo.stdout is not None
    output: list[str] = []
    gateway_pid = None
    gateway_gone = False
    try:
        deadline = time.monotonic() + 120
        while not any("tail sampling kept" in line for line in output):  # traffic flows through the gateway
            assert demo.poll() is None and time.monotonic() < deadline, "".join(output)
            output.append(demo.stdout.readline())
        gateway_pid = started_gateway(output)
        assert gateway_pid is not None
        demo.kill()
        demo.wait()
        deadline = time.monotonic() + 60
        while True:  # the gateway got SIGTERM, drained and exited (it is reaped by init, not by us)
            try:
                os.kill(gateway_pid, 0)
                with open(f"/proc/{gateway_pid}/stat") as stat:
                    if stat.read().split(") ", 1)[1].startswith("Z"):
                        break
            except (ProcessLookupError, FileNotFoundError):
                break
            assert time.monotonic() < deadline, "the demo's gateway outlived the demo"
            time.sleep(0.2)
        gateway_gone = True
        assert not any("fork" in line for line in output), "".join(output)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if gateway_pid is not None and not gateway_gone:
            with contextlib.suppress(ProcessLookupError):
                os.kill(gateway_pid, signal.SIGKILL)
