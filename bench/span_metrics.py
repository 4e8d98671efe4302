"""Benchmark: span_metrics' cost per span, in process, next to the ceiling measured in the same run.

The requests are the realistic pipeline's (``bench.pipeline_workload``: 500 spans each, traces of 5 to 20 spans,
1% errors, every request from a resource of its own: a pod name of its own). Each request is parsed just before
it is handed to ``SpanAggregator.add`` with the bytes it was parsed from attached, as the otlp receiver hands
it on (``gateway.wirebytes``; "no received bytes" leaves them out, as after a processor that changed the
batch without giving its new bytes); only ``add`` is timed, in CPU time of this process, and then the counting
of what it left pending (``_fold_all``; the aggregator does it every ``FOLD_AFTER`` spans and before a flush), so
the figure is the connector's whole cost per span, without the receiver's parse. Every round feeds all 64
requests, then builds the aggregate (a flush, not timed); the figure is the fastest round (the machine is shared:
slower rounds are other processes' doing), with the median round beside it.

    python -m bench.span_metrics [--rounds 7]

Configurations: the defaults (the realistic pipeline's), the same requests from 4 resources (one pod per
service, as a steady deployment sends), delta temporality, exponential histogram, two dimensions read from the
span attributes, exemplars on. The last two count span by span, the others per series
(plugins/connectors/span_metrics/README.md, Performance).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.passthrough import heading, measure_ceiling
from bench.pipeline_workload import SPANS_PER_REQUEST, make_payloads
from gateway.configtypes import decode
from gateway.wirebytes import attached
from plugins.connectors.span_metrics.aggregator import SpanAggregator
from plugins.connectors.span_metrics.factory import factory

CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "defaults, 4 resources": {},
    "defaults, no received bytes": {},
    "delta": {"aggregation_temporality": "AGGREGATION_TEMPORALITY_DELTA"},
    "exponential histogram": {"histogram": {"exponential": {"max_size": 160}}},
    "2 dimensions": {"dimensions": [{"name": "http.request.method", "default": "GET"}, {"name": "peer.service"}]},
    "exemplars": {"exemplars": {"enabled": True}},
}


def one_pod_per_service(payloads: list[bytes]) -> list[bytes]:
    """The requests with the host and pod names of one pod per service: 4 resources instead of 64."""
    out = []
    for payload in payloads:
        request = ExportTraceServiceRequest.FromString(payload)
        for rs in request.resource_spans:
            for kv in rs.resource.attributes:
                if kv.key in ("host.name", "k8s.pod.name"):
                    kv.value.string_value = "one"
        out.append(request.SerializeToString())
    return out


def per_span_us(payloads: list[bytes], overrides: dict[str, Any], rounds: int,
                with_bytes: bool = True) -> tuple[float, float]:
    """(fastest, median) round: CPU microseconds of ``add`` and of counting what it left pending, per span."""
    aggregator = SpanAggregator(decode(factory.create_default_config(), overrides))
    fold = getattr(aggregator, "_fold_all", None)  # counting deferred by add is part of its cost
    parse = ExportTraceServiceRequest.FromString
    clock = time.process_time
    spans = len(payloads) * SPANS_PER_REQUEST
    results = []
    for _ in range(rounds):
        spent = 0.0
        for payload in payloads:
            request = parse(payload)
            with attached(request, payload) if with_bytes else contextlib.nullcontext():
                start = clock()
                aggregator.add(request)
                spent += clock() - start
        if fold is not None:
            start = clock()
            fold()
            spent += clock() - start
        aggregator.build()
        results.append(spent / spans * 1e6)
    return min(results), statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    payloads = make_payloads()
    ceiling = measure_ceiling(payloads, SPANS_PER_REQUEST)
    print(heading("span_metrics"))
    print(f"  workload: {len(payloads)} requests x {SPANS_PER_REQUEST} spans (bench.pipeline_workload), "
          f"{args.rounds} rounds, parse not timed")
    print(f"  ceiling (parse + serialize, 1 core):   {ceiling:>10,.0f} spans/s  ({1e6 / ceiling:.2f} us/span)")
    steady = one_pod_per_service(payloads)
    for name, overrides in CONFIGS.items():
        best, median = per_span_us(steady if "4 resources" in name else payloads, overrides, args.rounds,
                                   with_bytes="no received bytes" not in name)
        print(f"  span_metrics add, {name + ':':<29}{best:>6.3f} us/span (median {median:.3f}), "
              f"{1e6 / best:>10,.0f} spans per CPU-second")


if __name__ == "__main__":
    main()
