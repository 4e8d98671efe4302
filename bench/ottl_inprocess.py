"""In-process A/B figures for the OTTL processors: microseconds of this process's CPU per span, no network.

``bench.ottl`` measures the whole gateway, which on a shared machine moves by 10-20% from run to run. This one
runs only the processors' work on the same workload (``bench.workload``) in this process, so that two versions of
the code can be compared within a few percent: the transform of ``bench.ottl`` on the received bytes
(``WirePlan.run``: parse as the view, statements, serialize), the same statements on the parsed request
(``StatementGroup.run``), a no-op statement on the bytes, and ``bench.ottl``'s filter on the parsed request. Each
figure is the best of ``--rounds`` rounds (the least disturbed by other processes), in CPU time.

    python -m bench.ottl_inprocess [--rounds 5] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import logging
import time
import timeit
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.ottl import FILTER, TRANSFORM
from bench.workload import make_payloads
from gateway.ottl import ConditionSet, ErrorReporter, StatementGroup, WirePlan, compile_condition, compile_statement

SPANS = 500


def _group(statements: list[str], reporter: ErrorReporter) -> StatementGroup:
    return StatementGroup("traces", "span", [compile_statement(s, "span") for s in statements], [], "ignore",
                          reporter)


def _per_span(work: Callable[[bytes], object], payloads: list[bytes], seconds: float, rounds: int) -> float:
    """The least CPU microseconds per span that ``work`` took on a payload, over ``rounds`` rounds."""
    def one_pass() -> None:
        for payload in payloads:
            work(payload)
    timer = timeit.Timer(one_pass, timer=time.process_time)
    passes, took = timer.autorange()  # also the warm-up: caches, allocator
    passes = max(1, round(passes * seconds / max(took, 1e-9)))
    best = min(timer.repeat(rounds, passes))
    return best / (passes * len(payloads) * SPANS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    payloads = make_payloads(16, SPANS)
    reporter = ErrorReporter(logging.getLogger("bench"), lambda statement: None)
    statements = TRANSFORM["trace_statements"][0]["statements"]
    wire = WirePlan.of([_group(statements, reporter)])
    noop = WirePlan.of([_group(['set(attributes["never"], "x") where name == "no such span"'], reporter)])
    assert wire is not None and noop is not None, "the statements no longer run on the bytes"
    parsed = _group(statements, reporter)
    drop = ConditionSet("traces", "span", [compile_condition(c, "span") for c in FILTER["traces"]["span"]],
                        "ignore", reporter, lambda condition, count: None)
    parse = ExportTraceServiceRequest.FromString

    def parsed_run(data: bytes) -> None:
        parsed.run(parse(data))

    def filter_run(data: bytes) -> None:
        drop.run(parse(data))

    def ceiling(data: bytes) -> None:
        parse(data).SerializeToString()

    cases: dict[str, Callable[[bytes], object]] = {
        "ceiling (parse + serialize)": ceiling,
        "parse only (the receiver's)": parse,
        "transform on the bytes": wire.run,
        "no-op statement on the bytes": noop.run,
        "transform on the parsed request": parsed_run,
        "filter (parse + conditions)": filter_run,
    }
    print(f"in-process, best of {args.rounds} x {args.seconds:.1f} s, CPU time per span")
    for label, work in cases.items():
        micros = _per_span(work, payloads, args.seconds, args.rounds)
        print(f"  {label:<34} {micros:6.2f} µs/span  ({1e6 / micros:>9,.0f} spans per CPU-second)")


if __name__ == "__main__":
    main()
