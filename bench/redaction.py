"""Benchmark: OTLP/gRPC in → redaction → batch → OTLP/gRPC out, spans/s and log records/s on one gateway core.

For each signal (traces, logs) the gateway runs the customer-service rules of configs/redaction.yaml on three
streams of the same customer-service traffic (bench/redaction_workload.py): the pass-through baseline without
the redaction processor, a stream where 1% of the items carry personal data, and one where every item does.
Figures printed for each, next to the ceiling measured in the same run (parse + serialize of the same requests on
one core): items per gateway CPU-second (the "per core" figure, from the gateway
process's utime + stime) and items per wall-clock second. Layout as bench/passthrough.py: gateway pinned to
core 0, load generator and counting sink on core 1.

    python -m bench.redaction [--requests 600] [--concurrency 16] [--signals traces,logs] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import yaml
from grpc import aio
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench.passthrough import BATCH, cpu_seconds, free_port, wait_for_port
from bench.passthrough import gateway_config as passthrough_config
from bench.redaction_workload import log_payloads, trace_payloads
from plugins.processors.redaction.rules import ENGINE

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "benchmark-only key, 32 bytes or more"
MESSAGES = {"traces": (ExportTraceServiceRequest, ExportTraceServiceResponse,
                       "opentelemetry.proto.collector.trace.v1.TraceService"),
            "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse,
                     "opentelemetry.proto.collector.logs.v1.LogsService")}


def count(signal: str, batch: Any) -> int:
    if signal == "traces":
        return sum(len(ss.spans) for rs in batch.resource_spans for ss in rs.scope_spans)
    return sum(len(sl.log_records) for rl in batch.resource_logs for sl in rl.scope_logs)


def measure_ceiling(signal: str, payloads: list[bytes], items: int, seconds: float = 2.0) -> float:
    """Parse + serialize of the same requests on this core: the upper bound any Python gateway could reach."""
    parse = MESSAGES[signal][0].FromString
    done, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        for payload in payloads:
            parse(payload).SerializeToString()
        done += len(payloads)
    return done * items / (time.process_time() - start)


class CountingSink:
    """An OTLP/gRPC sink for traces and logs that parses every request, as a backend would, and counts items."""

    def __init__(self) -> None:
        self.items = 0
        self.last_receive = 0.0
        self.server = aio.server(options=[("grpc.max_receive_message_length", 256 << 20)])
        for signal, (request_type, response_type, service) in MESSAGES.items():
            self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
                service, {"Export": grpc.unary_unary_rpc_method_handler(self._handler(signal, request_type,
                                                                                      response_type))}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def _handler(self, signal: str, request_type: Any, response_type: Any) -> Any:
        response = response_type().SerializeToString()

        async def export(request: bytes, context: object) -> bytes:
            self.items += count(signal, request_type.FromString(request))
            self.last_receive = time.perf_counter()
            return response
        return export


def redaction_rules(overrides: dict[str, Any]) -> dict[str, Any]:
    rules = yaml.safe_load((ROOT / "configs" / "redaction.yaml").read_text())["processors"]["redaction"]
    rules["hmac_key"] = BENCH_KEY  # the file reads it from ${env:REDACTION_KEY}
    return {**rules, **overrides}


def gateway_config(signal: str, redact: bool, receiver_port: int, sink_port: int, metrics_port: int,
                   overrides: dict[str, Any]) -> str:
    processors = {"redaction": redaction_rules(overrides), "batch": BATCH} if redact else {"batch": BATCH}
    return passthrough_config(receiver_port, sink_port, metrics_port, signal=signal, processors=processors)


async def load(port: int, signal: str, pii: float, requests: int, concurrency: int, items: int) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.redaction_loadgen", "--target", f"127.0.0.1:{port}", "--signal", signal,
        "--pii", str(pii), "--requests", str(requests), "--concurrency", str(concurrency), "--items", str(items),
        stdout=asyncio.subprocess.PIPE)
    os.sched_setaffinity(process.pid, {1})
    out, _ = await process.communicate()
    return json.loads(out)  # type: ignore[no-any-return]


async def run(signal: str, pii: float | None, requests: int, concurrency: int, items: int,
              overrides: dict[str, Any]) -> dict[str, Any]:
    """One gateway, one stream; pii None = the pass-through baseline (no redaction processor)."""
    sink = CountingSink()
    await sink.server.start()
    receiver_port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="otelgw-bench-redaction-"))
    config = workdir / "gateway.yaml"
    config.write_text(gateway_config(signal, pii is not None, receiver_port, sink.port, free_port(), overrides))
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(config)])
    os.sched_setaffinity(gateway.pid, {0})
    try:
        await wait_for_port(receiver_port, gateway)
        await load(receiver_port, signal, pii or 0.0, 40, 4, items)  # warm-up; the prefilter tunes its anchors
        while sink.items < 40 * items:
            await asyncio.sleep(0.05)
        sink.items = 0
        cpu_before, start = cpu_seconds(gateway.pid), time.perf_counter()
        sent = await load(receiver_port, signal, pii or 0.0, requests, concurrency, items)
        deadline = time.monotonic() + 120
        while sink.items < sent["items"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        elapsed, cpu = sink.last_receive - start, cpu_seconds(gateway.pid) - cpu_before
    finally:
        gateway.terminate()
        gateway.wait(30)
        await sink.server.stop(None)
    return {"sent": sent, "received": sink.items, "elapsed_s": elapsed, "gateway_cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--signals", default="traces,logs")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each row; the median is printed")
    args = parser.parse_args()
    print(f"otelgw redaction benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} {os.cpu_count()} cores  "
          f"python {platform.python_version()}  rules: configs/redaction.yaml  prefilter engine: {ENGINE}")
    for signal in args.signals.split(","):
        noun = "spans" if signal == "traces" else "log records"
        build = trace_payloads if signal == "traces" else log_payloads
        os.sched_setaffinity(0, {0})
        payloads = build(32, args.items, 0.01)
        ceiling = measure_ceiling(signal, payloads, args.items)
        os.sched_setaffinity(0, {1})
        print(f"  {signal}: {args.requests} requests x {args.items} {noun}, "
              f"{len(payloads[0]) / args.items:.0f} B/item, concurrency {args.concurrency}")
        print(f"    ceiling (parse + serialize, 1 core):       {ceiling:>9,.0f} {noun}/s")
        baseline = 0.0
        rows: list[tuple[str, float | None, dict[str, Any]]] = [
            ("pass-through (no redaction)", None, {}), ("redaction, 1% of items with PII", 0.01, {}),
            ("redaction, every item with PII", 1.0, {})]
        if signal == "logs":  # the shipped rules rewrite every body; show the prefilter without that too
            rows += [("  same, body_action: keep, 1% PII", 0.01, {"body_action": "keep"}),
                     ("  same, body_action: keep, all PII", 1.0, {"body_action": "keep"})]
        # Rounds go through the rows in turn, so that a slow spell of this shared machine hits every row alike;
        # each row prints its median round.
        results: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in rows}
        for _ in range(args.rounds):
            for label, pii, overrides in rows:
                results[label].append(asyncio.run(run(signal, pii, args.requests, args.concurrency, args.items,
                                                      overrides)))
        for label, _, _ in rows:
            rounds = sorted(results[label], key=lambda r: r["received"] / r["gateway_cpu_s"])
            result = rounds[len(rounds) // 2]
            per_core = result["received"] / result["gateway_cpu_s"]
            wall = result["received"] / result["elapsed_s"]
            baseline = baseline or per_core
            lost = sum(r["sent"]["items"] - r["received"] for r in rounds)
            print(f"    {label:<34} {per_core:>9,.0f} /CPU-s  ({per_core / ceiling:4.0%} of ceiling, "
                  f"{per_core / baseline:4.0%} of pass-through)  wall {wall:>9,.0f}/s"
                  + (f"  LOST {lost}" if lost else "") + (f"  failures {result['sent']['failures']}"
                                                         if result["sent"]["failures"] else ""))


if __name__ == "__main__":
    main()
