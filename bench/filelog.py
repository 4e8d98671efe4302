"""Benchmark: the filelog receiver, JSON log lines from a file into OTLP logs, next to the ceiling measured in the
same run.

Figures, per CPU-second of one core:
- ceiling: this process reads the same file in 256 KiB blocks, splits it into lines with bytes methods and
  ``json.loads`` every line (the least any JSON-to-OTLP reader must do, before building a single record);
- the gateway (a separate process, pinned to core 0; the counting sink here on core 1) tailing the file:
  ``json_parser`` with ``timestamp:`` and ``severity:`` blocks (what a Django/FastAPI JSON logs pipeline does),
  and without operators (raw lines, body only). Lines per CPU-second the gateway process used (utime + stime)
  from the moment the file appears until the last record reached the sink.

    python -m bench.filelog [--lines 300000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc import aio
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from bench.passthrough import cpu_seconds, free_port, wait_for_port

GOAL_LINES_PER_S = 100_000
_BLOCK = 256 * 1024
_PATHS = ["/api/orders", "/api/orders/{id}", "/api/customers/{id}", "/health", "/api/cart", "/login"]
_LEVELS = ["INFO"] * 8 + ["WARNING", "ERROR"]


def write_json_logs(path: Path, lines: int) -> None:
    """Lines as python-json-logger / structlog write them for a Django or FastAPI service (~230 bytes)."""
    rng = random.Random(7)
    base = 1_764_990_000.0
    with path.open("w") as out:
        for i in range(lines):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i / 1000)) + f".{i % 1000:03d}Z"
            record = {"timestamp": stamp, "level": rng.choice(_LEVELS), "logger": "app.views",
                      "message": f"request finished in {rng.randint(1, 900)} ms",
                      "path": rng.choice(_PATHS), "status": rng.choice((200, 200, 200, 201, 404, 500)),
                      "request_id": f"{rng.getrandbits(64):016x}", "user_id": rng.randint(1, 50_000)}
            out.write(json.dumps(record) + "\n")


def measure_ceiling(path: Path) -> float:
    """Lines per CPU-second: read in blocks, split with bytes methods, json.loads every line."""
    start = time.process_time()
    count = 0
    loads = json.loads
    with path.open("rb") as f:
        carry = b""
        while block := f.read(_BLOCK):
            buf = carry + block
            last = buf.rfind(b"\n")
            for line in buf[:last].split(b"\n"):
                loads(line)
                count += 1
            carry = buf[last + 1:]
    return count / (time.process_time() - start)


class CountingSink:
    """An OTLP/gRPC logs sink that parses every request (as a real backend would) and counts records."""

    def __init__(self) -> None:
        self.records = 0
        self.server = aio.server(options=[("grpc.max_receive_message_length", 256 << 20)])
        response = ExportLogsServiceResponse().SerializeToString()

        async def export(request: bytes, context: object) -> bytes:
            batch = ExportLogsServiceRequest.FromString(request)
            self.records += sum(len(sl.log_records) for rl in batch.resource_logs for sl in rl.scope_logs)
            return response

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.logs.v1.LogsService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)})
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")


JSON_OPERATORS = [{"type": "json_parser",
                   "timestamp": {"parse_from": "attributes.timestamp", "layout": "%Y-%m-%dT%H:%M:%S.%LZ"},
                   "severity": {"parse_from": "attributes.level"}}]


def gateway_config(directory: Path, sink_port: int, health_port: int, operators: list[Any]) -> str:
    receiver: dict[str, Any] = {"include": [f"{directory}/*.log"], "start_at": "beginning",
                                "poll_interval": "50ms"}
    if operators:
        receiver["operators"] = operators
    return yaml.safe_dump({
        "extensions": {"health_check": {"endpoint": f"127.0.0.1:{health_port}"}},
        "receivers": {"filelog": receiver},
        "exporters": {"otlp_grpc": {"endpoint": f"127.0.0.1:{sink_port}", "tls": {"insecure": True},
                                    "compression": "none",
                                    "sending_queue": {"num_consumers": 2, "queue_size": 1000}}},
        "service": {"extensions": ["health_check"],
                    "telemetry": {"metrics": {"address": ""}, "logs": {"level": "warn"}},
                    "pipelines": {"logs": {"receivers": ["filelog"], "exporters": ["otlp_grpc"]}}},
    }, sort_keys=False)


async def run_gateway(source: Path, lines: int, operators: list[Any]) -> tuple[float, float, int]:
    """(gateway CPU-seconds, wall seconds, records received) for reading ``source`` once."""
    sink = CountingSink()
    await sink.server.start()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "logs"
        directory.mkdir()
        health_port = free_port()
        config = Path(tmp) / "gateway.yaml"
        config.write_text(gateway_config(directory, sink.port, health_port, operators))
        gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                                   preexec_fn=lambda: os.sched_setaffinity(0, {0}))
        try:
            await wait_for_port(health_port, gateway)
            await asyncio.sleep(0.5)
            cpu_before = cpu_seconds(gateway.pid)
            start = time.perf_counter()
            os.link(source, directory / "app.log")  # the whole file appears at once
            deadline = time.monotonic() + 300
            while sink.records < lines and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - start
            cpu = cpu_seconds(gateway.pid) - cpu_before
        finally:
            gateway.terminate()
            gateway.wait(30)
            await sink.server.stop(None)
    return cpu, elapsed, sink.records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.log"
        write_json_logs(source, args.lines)
        size = source.stat().st_size
        os.sched_setaffinity(0, {0})
        ceiling = measure_ceiling(source)
        os.sched_setaffinity(0, {1})
        results = {name: asyncio.run(run_gateway(source, args.lines, ops))
                   for name, ops in (("json_parser + timestamp + severity", JSON_OPERATORS), ("raw lines", []))}
    print(f"otelgw filelog benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} {os.cpu_count()} cores  "
          f"python {platform.python_version()}")
    print(f"  workload: {args.lines:,} JSON lines, {size / args.lines:.0f} B/line, one file")
    print(f"  ceiling (read + split + json.loads, 1 core):  {ceiling:>10,.0f} lines/s")
    for name, (cpu, elapsed, received) in results.items():
        per_cpu = received / cpu if cpu else 0.0
        print(f"  filelog {name + ':':<36} {per_cpu:>10,.0f} lines per gateway CPU-s  ({per_cpu / ceiling:.0%} "
              f"of ceiling; goal {GOAL_LINES_PER_S:,}; {cpu:.2f} CPU-s, {elapsed:.2f} s wall, "
              f"{received:,}/{args.lines:,} received)")


if __name__ == "__main__":
    main()
