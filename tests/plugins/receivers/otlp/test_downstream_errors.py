"""A refusal downstream becomes the status of gateway.errors.status_for, on both transports, with retry hints."""

from __future__ import annotations

import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from gateway import otlpjson
from gateway.component import Signal
from gateway.errors import (
    OverloadedError,
    PermanentError,
    RetryableError,
    SkipBatchError,
    TooLargeError,
)
from gateway.testing import Sink, make_traces

OK = grpc.StatusCode.OK


class Refusing(Sink):
    """Raises ``error`` for every traces batch; other signals are taken."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error

    async def consume_traces(self, batch):
        raise self.error


# id: (error raised downstream, HTTP status, gRPC code, message, retry delay in seconds or None)
CASES = {
    "permanent": (PermanentError("bad span"), 400, grpc.StatusCode.INVALID_ARGUMENT, "bad span", None),
    "retryable": (RetryableError("exporter down"), 503, grpc.StatusCode.UNAVAILABLE, "exporter down", None),
    "retryable with delay": (RetryableError("exporter down", retry_after=1.5), 503, grpc.StatusCode.UNAVAILABLE,
                             "exporter down", 1.5),
    "overloaded": (OverloadedError("memory limit", retry_after=2), 429, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   "memory limit", 2.0),
    "too large": (TooLargeError("batch too big"), 413, grpc.StatusCode.RESOURCE_EXHAUSTED, "batch too big", None),
    "a bug downstream": (RuntimeError("boom"), 503, grpc.StatusCode.UNAVAILABLE, "internal error: boom", None),
}


def retry_delay(status) -> float | None:
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


@pytest.mark.parametrize("case", list(CASES))
async def test_http_answers_the_mapped_status(start_receiver, case):
    error, http_status, _, message, delay = CASES[case]
    rx = await start_receiver(sink=Refusing(error))
    reply = await rx.http("/v1/traces", make_traces(4).SerializeToString())
    assert reply.status == http_status
    assert reply.message == message
    assert retry_delay(reply.status_message) == delay
    if delay is None:
        assert "Retry-After" not in reply.headers
    else:
        assert reply.headers["Retry-After"] == str(-int(-delay // 1))  # whole seconds, rounded up
    assert rx.refused("http") == 4 and rx.accepted("http") == 0
    assert rx.all_bad_requests() == 0  # the request was fine; the pipeline refused it


@pytest.mark.parametrize("case", list(CASES))
async def test_grpc_answers_the_mapped_status(start_receiver, case):
    error, _, grpc_code, message, delay = CASES[case]
    rx = await start_receiver(sink=Refusing(error))
    reply = await rx.grpc(Signal.TRACES, make_traces(4))
    assert reply.code is grpc_code
    assert reply.details == message
    rich = rpc_status.from_call(reply.error)
    assert (retry_delay(rich) if rich is not None else None) == delay
    assert rx.refused("grpc") == 4 and rx.accepted("grpc") == 0


async def test_overloaded_is_retryable_resource_exhausted_with_retry_info_of_two_seconds(start_receiver):
    rx = await start_receiver(sink=Refusing(OverloadedError("sending queue is full", retry_after=2)))
    reply = await rx.grpc(Signal.TRACES, make_traces(1))
    assert reply.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    rich = rpc_status.from_call(reply.error)
    info = error_details_pb2.RetryInfo()
    assert rich.details[0].Unpack(info) and info.retry_delay.seconds == 2 and info.retry_delay.nanos == 0
    answer = await rx.http("/v1/traces", otlpjson.encode(make_traces(1)), "application/json")
    assert answer.status == 429 and answer.headers["Retry-After"] == "2"
    assert json.loads(answer.body) == {"code": 8, "message": "sending queue is full", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_a_batch_skipped_on_purpose_is_success(start_receiver, transport):
    rx = await start_receiver(sink=Refusing(SkipBatchError("sampled out")))
    await rx.send_valid(transport)  # asserts success
    assert rx.accepted(transport) == 3 and rx.refused(transport) == 0


async def test_other_signals_keep_flowing_while_one_is_refused(start_receiver):
    rx = await start_receiver(sink=Refusing(RetryableError("traces exporter down")))
    assert (await rx.grpc(Signal.TRACES, make_traces(2))).code is grpc.StatusCode.UNAVAILABLE
    await rx.send_valid("grpc", Signal.LOGS)
    await rx.send_valid("http", Signal.METRICS)
    assert len(rx.received(Signal.LOGS)) == 1 and len(rx.received(Signal.METRICS)) == 1
