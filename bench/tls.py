"""Benchmark: OTLP/gRPC over TLS in → batch → OTLP/gRPC out, with grpc's own TLS (the ceiling, same run) and with
the receiver's Python TLS front (``tls::min_version: "1.3"``, which grpcio cannot enforce itself).

Same layout as bench.passthrough: the gateway on core 0, the load generator and the sink on core 1. Printed per
gateway CPU-second, the front next to grpc's own TLS measured in the same run.

    python -m bench.tls [--requests 1500] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from bench.passthrough import gateway_config, measure_load, start_gateway


def make_certificate(directory: Path) -> tuple[Path, Path]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=bench",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "key.pem", "-out", "cert.pem"],
                   cwd=directory, check=True, capture_output=True)
    return directory / "cert.pem", directory / "key.pem"


async def run(requests: int, concurrency: int, spans: int, min_version: str) -> dict:
    cert, key = make_certificate(Path(tempfile.mkdtemp(prefix="otelgw-bench-tls-")))

    def config(receiver_port: int, sink_port: int, metrics_port: int) -> str:
        config = yaml.safe_load(gateway_config(receiver_port, sink_port, metrics_port))
        tls = {"cert_file": str(cert), "key_file": str(key), **({"min_version": min_version} if min_version else {})}
        config["receivers"]["otlp"]["protocols"]["grpc"]["tls"] = tls
        return yaml.safe_dump(config, sort_keys=False)

    sink, receiver_port, gateway = await start_gateway("tls", config)
    return await measure_load(gateway, receiver_port, sink, requests, concurrency, spans, ["--ca-file", str(cert)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--spans", type=int, default=500)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    native = asyncio.run(run(args.requests, args.concurrency, args.spans, ""))
    front = asyncio.run(run(args.requests, args.concurrency, args.spans, "1.3"))
    print(f"otelgw OTLP/gRPC TLS benchmark  {time.strftime('%Y-%m-%d')}  {platform.machine()} "
          f"{os.cpu_count()} cores  python {platform.python_version()}")
    print(f"  workload: {args.requests} requests x {args.spans} spans, concurrency {args.concurrency}")
    ceiling = native["received_spans"] / native["gateway_cpu_s"]
    for name, result in (("grpc's own TLS (ceiling)", native), ('TLS front (min_version "1.3")', front)):
        per_core = result["received_spans"] / result["gateway_cpu_s"]
        lost = result["sent"]["items"] - result["received_spans"]
        print(f"  {name:<32} {per_core:>10,.0f} spans per gateway CPU-second ({per_core / ceiling:.0%} of the "
              f"ceiling); {result['received_spans'] / result['elapsed_s']:,.0f} spans/s wall; lost {lost}")


if __name__ == "__main__":
    main()
