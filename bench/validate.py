"""The receiver's request check: microseconds per span of ``validate`` (C) against upb's ``FromString``.

Both run over the same requests of the realistic pipeline (``bench.pipeline_workload.make_payloads``: 500 spans of
about 10 attributes each) in the same process, pinned to one core, in turns (``bench.jaeger_loki.best_of``); the
best round of each is printed (the one least disturbed by other processes), next to the ceiling of
``bench.passthrough`` (parse + serialize) measured in the same run.

    python -m bench.validate [--rounds 7] [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.jaeger_loki import best_of
from bench.passthrough import heading, measure_ceiling
from bench.pipeline_workload import SPANS_PER_REQUEST, make_payloads
from gateway import Signal, spanscan
from gateway.helpers.wireschema import check_python, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    payloads = make_payloads()
    ceiling = measure_ceiling(payloads, SPANS_PER_REQUEST)
    traces = schema(Signal.TRACES)
    runs: dict[str, Callable[[bytes], object]] = {"upb FromString": ExportTraceServiceRequest.FromString,
                                                  "check_python (parse + count)": lambda d: check_python(
                                                      Signal.TRACES, d)}
    if spanscan is not None:
        validate = spanscan.validate
        runs["validate (C)"] = lambda d: validate(d, traces)
        assert all(validate(d, traces) == SPANS_PER_REQUEST for d in payloads)
    best = {name: 1e6 / rate for name, rate in best_of(runs, payloads, SPANS_PER_REQUEST, args.seconds,
                                                       args.rounds).items()}
    size = sum(map(len, payloads)) / len(payloads)
    print(heading("request check (validate)"))
    print(f"  workload: {len(payloads)} requests x {SPANS_PER_REQUEST} spans, {size / 1024:.0f} KiB each "
          f"(bench.pipeline_workload); best of {args.rounds} rounds of {args.seconds}s each, in turns")
    print(f"  ceiling (parse + serialize, 1 core):   {ceiling:>10,.0f} spans/s  ({1e6 / ceiling:.2f} us/span)")
    for name, us in best.items():
        print(f"  {name + ':':<38} {us:>10.3f} us/span")
    if spanscan is None:
        print("  validate (C): not built here")
    else:
        print(f"  validate / FromString:                 {best['validate (C)'] / best['upb FromString']:>10.2f}")


if __name__ == "__main__":
    main()
