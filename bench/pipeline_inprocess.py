"""The realistic pipeline in process: CPU microseconds per span of the pipeline's own work, no network.

``bench.pipeline`` measures the whole gateway over OTLP/gRPC, which on a shared machine moves by a third from run
to run. This one builds the same pipeline (``bench.pipeline.gateway_config``: memory_limiter -> redaction ->
span_metrics + (forward -> tail_sampling -> batch)), with a ``debug`` exporter that prints nothing in place of the
OTLP exporter, and hands it the same requests (``bench.pipeline_workload``, every trace id new) the way the otlp
receiver does: the check (``Route.take``: in C, no parse), delivery as bytes. After each round of ``--requests``
requests, every waiting trace is decided. A round's figure is the CPU time of this process per span, parse and
decisions included; the best of ``--rounds`` rounds is printed (the least disturbed by other processes), with the
ceiling (protobuf parse + serialize of the same requests) measured in the same run. ``OTELGW_PURE_PYTHON=1`` runs
the Python twins of the C loops instead.

    python -m bench.pipeline_inprocess [--requests 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from typing import Any

import yaml

from bench.passthrough import free_port, heading, measure_ceiling
from bench.pipeline import gateway_config
from bench.pipeline_workload import SPANS_PER_REQUEST, make_payloads
from bench.tail_sampling_load import UniqueTraces
from gateway import Kind, Signal, spanscan
from gateway._host import gcpolicy, mallocpolicy
from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway._host.service import Service


def pipeline_config() -> dict[str, Any]:
    """bench.pipeline's configuration with a silent debug exporter and no self-metrics endpoint."""
    config = yaml.safe_load(gateway_config(free_port(), free_port(), free_port(), free_port()))
    config["exporters"] = {**config["exporters"], "debug": {"verbosity": "basic", "sampling_initial": 0,
                                                            "sampling_thereafter": 1_000_000_000}}
    del config["exporters"]["otlp_grpc"]
    config["service"]["pipelines"]["traces/sampled"]["exporters"] = ["debug"]
    config["service"]["telemetry"]["metrics"]["address"] = ""
    return config


async def per_span_us(requests: int, rounds: int) -> list[float]:
    """CPU microseconds per span of each round."""
    gcpolicy.install()  # as `otelgw run` does
    mallocpolicy.install()
    registry = load_registry()
    service = Service(build_config(pipeline_config(), registry), registry)
    await service.start()
    try:
        route = service.graph.find(Kind.RECEIVER, "otlp").routes("grpc")[Signal.TRACES]
        sampler = service.graph.find(Kind.PROCESSOR, "tail_sampling")
        traces = UniqueTraces(SPANS_PER_REQUEST, payloads=make_payloads())
        results = []
        for round_ in range(rounds):
            payloads = [traces(round_ * requests + i) for i in range(requests)]
            gc.collect()
            start = time.process_time()
            for payload in payloads:  # what the otlp receiver's export handler does with a request
                batch = route.take(payload)
                rejection = route.screen(batch, payload)
                await route.deliver(batch, payload if rejection is None else None, None)
            await sampler.decide_due(now=time.monotonic() + 3600)
            results.append((time.process_time() - start) / (requests * SPANS_PER_REQUEST) * 1e6)
        return results
    finally:
        await service.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    ceiling = measure_ceiling(make_payloads(), SPANS_PER_REQUEST)
    results = asyncio.run(per_span_us(args.requests, args.rounds))
    best = min(results)
    print(heading("realistic pipeline, in process"))
    print(f"  workload: {args.rounds} rounds of {args.requests} requests x {SPANS_PER_REQUEST} spans "
          f"(bench.pipeline_workload), every trace id new; C loops: {'on' if spanscan is not None else 'off'}")
    print(f"  ceiling (parse + serialize, 1 core):   {ceiling:>10,.0f} spans/s  ({1e6 / ceiling:.2f} us/span)")
    print(f"  pipeline, rounds (us/span):            {', '.join(f'{r:.2f}' for r in results)}")
    print(f"  pipeline, best round:                  {best:>10.2f} us/span = {1e6 / best:,.0f} spans per CPU-second")


if __name__ == "__main__":
    main()
