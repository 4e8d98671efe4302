"""Offsets in a file_storage extension: a gateway process killed with SIGKILL while the backend refuses, its files
rotated while it is down, resumes exactly: every line arrives, and nothing acknowledged before the kill comes
again (offsets are checkpointed only after the next stage took the lines)."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[3]))
from filelog_testlib import bodies
from gwproc import GatewayProcess, free_port


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def append(path: Path, start: int, count: int) -> None:
    with path.open("a") as f:
        f.write("".join(f'{{"n": {i}, "msg": "line {i}"}}\n' for i in range(start, start + count)))


async def test_sigkill_restart_resumes_exactly(tmp_path: Path) -> None:
    sink = OtlpSink()
    await sink.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    ports = {name: free_port() for name in ("health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage/offsets: {{directory: "{tmp_path / 'offsets'}", create_directory: true}}
        receivers:
          filelog:
            include: ["{logs}/app.log*"]
            start_at: beginning
            poll_interval: 50ms
            storage: file_storage/offsets
            operators:
              - type: json_parser
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{enabled: false}}       # the receiver waits for the backend's answer
            retry_on_failure: {{enabled: false}}    # a refusal rewinds the receiver, which reads again
        service:
          extensions: [health_check, file_storage/offsets]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            logs: {{receivers: [filelog], exporters: [otlp]}}
    """))
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        append(app, 0, 20_000)
        gateway.start().wait_ready()
        await wait_for(lambda: len(bodies(sink)) >= 20_000, 60, "the first 20000 lines")
        first = collections.Counter(bodies(sink))
        assert len(first) == 20_000 and max(first.values()) == 1

        sink.fail_next(1_000_000, message="backend down")
        append(app, 20_000, 5_000)  # read, refused, rewound: not checkpointed
        await wait_for(lambda: gateway.metric("otelcol_receiver_refused_log_records_total") > 0, 30, "a refusal")
        gateway.send_signal(signal.SIGKILL)
        gateway.process.wait()

        # while it is down: the file is rotated (renamed) and a new one started
        append(app, 25_000, 1_000)
        os.rename(app, logs / "app.log.1")
        append(app, 26_000, 3_000)
        sink.clear()

        gateway.start().wait_ready()
        await wait_for(lambda: len(set(bodies(sink))) >= 9_000, 60, "the lines written since")
        await asyncio.sleep(0.5)
        after = collections.Counter(bodies(sink))
        expected = {f'{{"n": {i}, "msg": "line {i}"}}' for i in range(20_000, 29_000)}
        assert set(after) == expected, (len(set(after)), len(expected))
        assert max(after.values()) == 1  # nothing arrived twice: what was acknowledged was checkpointed
    finally:
        gateway.kill()
        await sink.stop()


async def test_sigkill_while_lines_flow_and_files_rotate_loses_nothing(tmp_path: Path) -> None:
    """A writer appends and rotates (rename) all along; the gateway is killed mid-stream and restarted. Every line
    arrives; the only repeats allowed are the one batch in flight at the kill (at least once)."""
    sink = OtlpSink()
    await sink.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    ports = {name: free_port() for name in ("health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
          file_storage: {{directory: "{tmp_path / 'offsets'}", create_directory: true}}
        receivers:
          filelog:
            include: ["{logs}/app.log*"]
            start_at: beginning
            poll_interval: 20ms
            storage: file_storage
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{enabled: false}}
        service:
          extensions: [health_check, file_storage]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            logs: {{receivers: [filelog], exporters: [otlp]}}
    """))
    total = 0
    stop = asyncio.Event()

    async def writer() -> None:
        nonlocal total
        rotation = 0
        while not stop.is_set():
            append(app, total, 300)
            total += 300
            if total % 6000 == 0:
                rotation += 1
                os.rename(app, logs / f"app.log.{rotation}")
            await asyncio.sleep(0.01)

    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    task = asyncio.create_task(writer())
    try:
        gateway.start().wait_ready()
        await wait_for(lambda: len(bodies(sink)) >= 5_000, 60, "lines flowing")
        gateway.send_signal(signal.SIGKILL)
        gateway.process.wait()
        await asyncio.sleep(0.3)
        gateway.start().wait_ready()
        await asyncio.sleep(0.5)
        stop.set()
        await task
        await wait_for(lambda: len(set(bodies(sink))) >= total, 60, f"all {total} lines")
        received = collections.Counter(bodies(sink))
        assert set(received) == {f'{{"n": {i}, "msg": "line {i}"}}' for i in range(total)}
        repeats = sum(count - 1 for count in received.values())
        assert repeats <= 8192, repeats  # at most the batch in flight when the process died
    finally:
        stop.set()
        if not task.done():
            await task
        gateway.kill()
        await sink.stop()
