"""Realistic log requests for benchmarks: 500 records per request, about 200 bytes per record on the wire.

Records look like what an instrumented customer-service API logs through the OpenTelemetry SDK: a message of
60-160 characters, a severity (mostly INFO, some WARN and ERROR), code and HTTP attributes, and the trace and
span ids of the request they belong to. Built once, serialized once, replayed as bytes.
"""

from __future__ import annotations

import random

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from bench.workload import ROUTES, SERVICES

MESSAGES = [
    "order {id} accepted for customer {customer}, {items} items, total {total} EUR",
    "ticket {id} assigned to agent {agent} after {wait} s in queue",
    "call {id} transferred from queue billing to queue retention",
    "payment provider answered in {wait} ms for order {id}",
    "customer {customer} not found in CRM; creating a new record with default preferences",
    "retrying request to inventory service (attempt {items} of 5) for order {id}",
]
SEVERITIES = [(9, "INFO")] * 16 + [(13, "WARN")] * 3 + [(17, "ERROR")]


def _kv(key: str, value: object) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = str(value)
    return kv


def make_request(rng: random.Random, records: int = 500) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend([_kv("service.name", rng.choice(SERVICES)), _kv("service.namespace", "shop"),
                                   _kv("service.instance.id", f"pod-{rng.randrange(40)}"),
                                   _kv("deployment.environment", "prod")])
    sl = rl.scope_logs.add()
    sl.scope.name = "app.logging"
    start = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    for i in range(records):
        record = sl.log_records.add()
        record.time_unix_nano = start + i * 1_000_000 + rng.randrange(1000)
        record.observed_time_unix_nano = record.time_unix_nano + 50_000
        record.severity_number, record.severity_text = rng.choice(SEVERITIES)  # type: ignore[assignment]
        record.body.string_value = rng.choice(MESSAGES).format(
            id=rng.randrange(10**6), customer=f"c-{rng.randrange(10**4)}", items=rng.randrange(1, 9),
            total=rng.randrange(5, 900), agent=f"a-{rng.randrange(200)}", wait=rng.randrange(1, 900))
        record.attributes.extend([_kv("code.function", rng.choice(["accept", "assign", "transfer", "charge"])),
                                  _kv("http.route", rng.choice(ROUTES)),
                                  _kv("thread.id", rng.randrange(1, 17))])
        if rng.random() < 0.8:
            record.trace_id, record.span_id = rng.randbytes(16), rng.randbytes(8)
    return request


def make_payloads(count: int = 64, records: int = 500, seed: int = 11) -> list[bytes]:
    """``count`` distinct serialized requests of ``records`` log records each."""
    rng = random.Random(seed)
    return [make_request(rng, records).SerializeToString() for _ in range(count)]


if __name__ == "__main__":
    payloads = make_payloads(8)
    print(f"{len(payloads[0]) / 500:.0f} bytes per record on the wire")
