"""Client side of docs/protocols.md §1.2: which gRPC and HTTP answers an exporter retries, and how long it waits."""

from __future__ import annotations

import email.utils

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.errors import InvalidDataError, PermanentError, RetryableError, TooLargeError
from gateway.helpers.exporter import grpc_error, http_error, parse_retry_after, retry_info_delay

RETRYABLE = {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}


def details_trailer(seconds: int, nanos: int = 0, extra: bool = False) -> tuple[tuple[str, bytes], ...]:
    status = status_pb2.Status(code=8, message="slow down")
    if extra:  # RetryInfo need not be the first detail
        other = any_pb2.Any()
        other.Pack(error_details_pb2.BadRequest())
        status.details.append(other)
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)))
    status.details.append(detail)
    return (("other-key", "x"), ("grpc-status-details-bin", status.SerializeToString()))


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c not in (grpc.StatusCode.OK,)],
                         ids=lambda c: c.name)
def test_grpc_codes_follow_the_otlp_table(code: grpc.StatusCode) -> None:
    error = grpc_error(code, "server says no")
    expected = RetryableError if code.name in RETRYABLE else PermanentError
    # Refusals of the content are the permanent errors an exporter bisects.
    expected = {"INVALID_ARGUMENT": InvalidDataError, "RESOURCE_EXHAUSTED": TooLargeError}.get(code.name, expected)
    assert type(error) is expected
    assert str(error) == f"{code.name}: server says no"


def test_resource_exhausted_is_retryable_only_with_retry_info() -> None:
    plain = grpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "too big")
    assert isinstance(plain, PermanentError)
    trailer = details_trailer(2, 500_000_000, extra=True)
    throttled = grpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", trailer)
    assert isinstance(throttled, RetryableError)
    assert throttled.retry_after == pytest.approx(2.5)


def test_unavailable_carries_the_retry_info_delay() -> None:
    error = grpc_error(grpc.StatusCode.UNAVAILABLE, None, details_trailer(0, 250_000_000))
    assert isinstance(error, RetryableError)
    assert error.retry_after == pytest.approx(0.25)
    assert str(error) == "UNAVAILABLE"


def test_retry_info_delay_ignores_missing_or_garbled_details() -> None:
    assert retry_info_delay(None) is None
    assert retry_info_delay([("grpc-status-details-bin", b"\xff\xff\xff")]) is None
    no_retry_info = status_pb2.Status(message="x").SerializeToString()
    assert retry_info_delay([("grpc-status-details-bin", no_retry_info)]) is None


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_throttling_and_gateway_errors_are_retryable(status: int) -> None:
    error = http_error(status, "busy", "7")
    assert isinstance(error, RetryableError)
    assert error.retry_after == 7
    assert str(error) == f"HTTP {status}: busy"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 413, 415, 500, 501, 505])
def test_every_other_http_error_is_permanent(status: int) -> None:
    error = http_error(status, "", "7")
    assert isinstance(error, PermanentError)
    assert str(error) == f"HTTP {status}"


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 0.5 ") == 0.5
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0
    for bad in (None, "", "soon", "-5", "Fri, 99 Foo 2024"):
        assert parse_retry_after(bad) is None
