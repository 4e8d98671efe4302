"""Memory stays bounded on hostile files, measured on a real gateway process: a 64 MB line without a newline and
8 MB of binary garbage are read through while the process's peak RSS grows by far less than the data."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time
from pathlib import Path

from gateway.testing.otlp_sink import OtlpSink

sys.path.insert(0, str(Path(__file__).parents[3]))
from gwproc import GatewayProcess, free_port

MB = 1024 * 1024


async def test_huge_line_and_garbage_do_not_grow_memory(tmp_path: Path) -> None:
    sink = OtlpSink(grpc_options=[("grpc.max_receive_message_length", 64 * MB)])
    await sink.start()
    logs = tmp_path / "logs"
    logs.mkdir()
    ports = {name: free_port() for name in ("health", "metrics")}
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
        receivers:
          filelog:
            include: ["{logs}/*.log"]
            start_at: beginning
            poll_interval: 50ms
            max_log_size: 1MiB
        exporters:
          otlp:
            endpoint: {sink.grpc_endpoint}
            tls: {{insecure: true}}
            sending_queue: {{enabled: false}}
        service:
          extensions: [health_check]
          telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
          pipelines:
            logs: {{receivers: [filelog], exporters: [otlp]}}
    """))
    gateway = GatewayProcess(config, ports, tmp_path / "gateway.log")
    try:
        gateway.start().wait_ready()
        baseline = gateway.status_kb("VmRSS")
        with (logs / "huge.log").open("wb") as out:
            for _ in range(64):
                out.write(b"y" * MB)  # one line of 64 MB, no newline yet
        with (logs / "garbage.log").open("wb") as out:
            out.write(os.urandom(8 * MB))
        deadline = time.monotonic() + 120
        while gateway.metric("otelgw_receiver_filelog_read_bytes_total") < 72 * MB:
            assert time.monotonic() < deadline, gateway.log()
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the force-flush of the line's last piece
        peak = gateway.status_kb("VmHWM")
        print(f"peak RSS grew by {(peak - baseline) // 1024} MB reading 72 MB")
        assert peak - baseline < 40 * 1024, f"peak RSS grew by {(peak - baseline) // 1024} MB reading 72 MB"
        assert gateway.metric("otelgw_receiver_filelog_problems_total", reason="entry_cut") >= 1
        assert gateway.metric("otelgw_receiver_filelog_problems_total", reason="invalid_encoding") >= 1
        assert gateway.metric("otelcol_receiver_accepted_log_records_total") >= 64
    finally:
        gateway.kill()
        await sink.stop()
