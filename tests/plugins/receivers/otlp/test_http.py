"""OTLP/HTTP: protobuf and JSON for every signal, gzip and deflate, and every bad input, each followed (and
accompanied) by a valid request that must still arrive."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from gateway import otlpjson
from gateway.component import Signal
from gateway.testing import make_logs, make_metrics, make_traces

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
PATHS = {Signal.TRACES: "/v1/traces", Signal.METRICS: "/v1/metrics", Signal.LOGS: "/v1/logs"}
BUILDERS = {Signal.TRACES: make_traces, Signal.METRICS: make_metrics, Signal.LOGS: make_logs}
HTTP_LIMIT = 64 * 1024  # as in conftest

ENCODINGS = {
    "protobuf": (PROTOBUF, lambda b: b.SerializeToString(), None),
    "json": (JSON, otlpjson.encode, None),
    "protobuf+gzip": (PROTOBUF, lambda b: gzip.compress(b.SerializeToString()), "gzip"),
    "json+gzip": (JSON, lambda b: gzip.compress(otlpjson.encode(b)), "gzip"),
    "protobuf+deflate": (PROTOBUF, lambda b: zlib.compress(b.SerializeToString()), "deflate"),
}


@pytest.mark.parametrize("signal", list(Signal), ids=lambda s: s.value)
@pytest.mark.parametrize("encoding", list(ENCODINGS))
async def test_every_signal_arrives_intact(rx, signal, encoding):
    content_type, encode, content_encoding = ENCODINGS[encoding]
    batch = BUILDERS[signal](25)
    headers = {"Content-Encoding": content_encoding} if content_encoding else {}
    reply = await rx.http(PATHS[signal], encode(batch), content_type, headers)
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == content_type  # the answer speaks the request's type
    assert rx.received(signal) == [batch]
    assert rx.accepted("http", signal) == 25
    assert rx.refused("http", signal) == 0


async def test_protobuf_success_is_an_export_response_without_partial_success(rx):
    reply = await rx.http("/v1/traces", make_traces(3).SerializeToString())
    response = ExportTraceServiceResponse.FromString(reply.body)
    assert not response.HasField("partial_success")


async def test_json_ids_are_hex_both_ways(rx):
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
        "parentSpanId": "eee19b7ec3c1b173", "name": "checkout", "kind": 2,
        "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": 1544712661000000000,
        "attributes": [{"key": "http.route", "value": {"stringValue": "/cart"}}],
        "links": [{"traceId": "00000000000000000000000000000001", "spanId": "0000000000000002"}],
    }]}]}]}
    reply = await rx.http("/v1/traces", json.dumps(document).encode(), "application/json; charset=utf-8")
    assert reply.status == 200 and json.loads(reply.body) == {}
    span = rx.received()[0].resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert span.links[0].span_id == bytes.fromhex("0000000000000002")
    assert span.end_time_unix_nano == 1544712661000000000
    assert span.attributes[0].value.string_value == "/cart"
    again = otlpjson.to_dict(rx.received()[0])["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert again["traceId"] == "5b8efff798038103d269b633813fc60c"


async def test_several_gzip_members_are_one_body(rx):
    batch = make_traces(20)
    data = batch.SerializeToString()
    body = gzip.compress(data[:100]) + gzip.compress(data[100:])
    assert (await rx.http("/v1/traces", body, headers={"Content-Encoding": "gzip"})).status == 200
    assert rx.received() == [batch]


@pytest.mark.parametrize(("body", "content_type"), [(b"", PROTOBUF), (b"", JSON), (b"{}", JSON)])
async def test_an_empty_request_is_answered_success_and_not_forwarded(rx, body, content_type):
    reply = await rx.http("/v1/traces", body, content_type)
    assert reply.status == 200
    assert rx.received() == []
    assert rx.all_bad_requests() == 0


async def test_custom_paths_replace_the_default_ones(start_receiver, config_for):
    rx = await start_receiver(config=config_for(http_settings={"traces_url_path": "/otlp/traces"}))
    assert (await rx.http("/otlp/traces", make_traces(2).SerializeToString())).status == 200
    assert (await rx.http("/v1/traces", make_traces(2).SerializeToString())).status == 404
    assert len(rx.received()) == 1


TRACES = make_traces(10).SerializeToString()
NON_HEX = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
    {"traceId": "not-a-hex-trace-id", "spanId": "eee19b7ec3c1b174"}]}]}]}).encode()

# id: (request keyword arguments, status, start of the message, bad-request reason)
BAD_REQUESTS = {
    "garbage bytes": (dict(body=b"\xff\xfenot a protobuf"), 400,
                      "malformed protobuf body (16 bytes): malformed protobuf: ", "malformed"),
    "truncated protobuf": (dict(body=TRACES[:-7]), 400, f"malformed protobuf body ({len(TRACES) - 7} bytes)",
                           "malformed"),
    "invalid JSON": (dict(body=b'{"resourceSpans": [', content_type=JSON), 400, "invalid JSON: ", "malformed"),
    "JSON with a non-hex traceId": (dict(body=NON_HEX, content_type=JSON), 400,
                                    "traceId must be a hex string, got 'not-a-hex-trace-id'", "malformed"),
    "JSON that is not an object": (dict(body=b"[]", content_type=JSON), 400,
                                   "invalid OTLP/JSON: the top level must be an object", "malformed"),
    "wrong content type": (dict(body=TRACES, content_type="text/plain"), 415,
                           "unsupported Content-Type 'text/plain'; use application/x-protobuf or application/json",
                           "unsupported_content_type"),
    "bad gzip": (dict(body=b"this is not gzip", headers={"Content-Encoding": "gzip"}), 400,
                 "request body is not valid gzip: Error -3 while decompressing data", "bad_compression"),
    "truncated gzip": (dict(body=gzip.compress(TRACES)[:-10], headers={"Content-Encoding": "gzip"}), 400,
                       "request body is not valid gzip: the stream is truncated", "bad_compression"),
    "bad deflate": (dict(body=b"this is not deflate", headers={"Content-Encoding": "deflate"}), 400,
                    "request body is not valid deflate", "bad_compression"),
    "unsupported encoding": (dict(body=TRACES, headers={"Content-Encoding": "zstd"}), 415,
                             "unsupported Content-Encoding 'zstd'; use gzip, deflate or none",
                             "unsupported_encoding"),
    "gzip bomb over the limit": (dict(body=gzip.compress(b"\x00" * 16 * HTTP_LIMIT),
                                      headers={"Content-Encoding": "gzip"}), 413,
                                 "request body is over max_request_body_size (65536 bytes) after decompression",
                                 "too_large"),
    "body over the limit": (dict(body=b"\x00" * (HTTP_LIMIT + 1)), 413,
                            "request body of 65537 bytes is over max_request_body_size (65536 bytes)",
                            "too_large"),
    "unknown path": (dict(path="/v1/trace", body=TRACES), 404,
                     "unknown path '/v1/trace'; OTLP paths: /v1/traces, /v1/metrics, /v1/logs", "not_found"),
    "GET": (dict(method="GET", content_type=None), 405, "GET is not allowed on /v1/traces; OTLP uses POST",
            "method_not_allowed"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_request_is_refused_clearly_counted_and_harmless(rx, case):
    kwargs, status, message, reason = BAD_REQUESTS[case]
    request = {"path": "/v1/traces", "body": b"", **kwargs}
    reply = await rx.still_serving("http", lambda: rx.http(**request))
    assert reply.status == status
    assert reply.message.startswith(message), reply.message
    expected_type = PROTOBUF if request.get("content_type", PROTOBUF) == PROTOBUF else JSON
    assert reply.headers["Content-Type"] == expected_type  # a google.rpc.Status in the request's type
    assert rx.bad_requests("http", reason) == 1
    assert rx.all_bad_requests() == 1
    if status == 405:
        assert reply.headers["Allow"] == "POST"


async def test_a_streamed_body_over_the_limit_is_cut_off(rx):
    async def chunks():
        for _ in range(4):
            yield b"\x00" * (HTTP_LIMIT // 2)  # no Content-Length: the server must count as it reads

    reply = await rx.still_serving("http", lambda: rx.http("/v1/traces", chunks()))  # type: ignore[arg-type]
    assert reply.status == 413
    assert reply.message == "request body is over max_request_body_size (65536 bytes)"
    assert rx.bad_requests("http", "too_large") == 1


async def test_a_declared_content_length_over_the_limit_is_refused_before_the_body(rx):
    async def declare_a_gigabyte() -> tuple[int, bytes]:
        host, port = rx.receiver.http_address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 1000000000\r\n\r\n")  # and never send the body
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        body = await reader.readexactly(length)
        writer.close()
        return int(head.split()[1]), body

    status, body = await rx.still_serving("http", declare_a_gigabyte)
    assert status == 413
    from google.rpc import status_pb2

    assert status_pb2.Status.FromString(body).message == (
        "request body of 1000000000 bytes is over max_request_body_size (65536 bytes)")
    assert rx.bad_requests("http", "too_large") == 1


async def test_a_sender_hanging_up_mid_body_is_counted_and_harmless(rx):
    async def hang_up() -> None:
        host, port = rx.receiver.http_address.rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Content-Length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()
        for _ in range(200):  # the server notices the hang-up asynchronously
            if rx.bad_requests("http", "incomplete_body"):
                return
            await asyncio.sleep(0.01)

    await rx.still_serving("http", hang_up)
    assert rx.bad_requests("http", "incomplete_body") == 1
    assert rx.all_bad_requests() == 1


async def test_an_unwired_signal_is_not_found(start_receiver):
    rx = await start_receiver(signals=[Signal.TRACES, Signal.LOGS])
    request = make_metrics(3).SerializeToString()
    reply = await rx.still_serving("http", lambda: rx.http("/v1/metrics", request))
    assert reply.status == 404
    assert reply.message == "this receiver takes no metrics: no metrics pipeline lists it"
    assert rx.bad_requests("http", "unwired_signal") == 1
    assert (await rx.http("/v1/logs", make_logs(2).SerializeToString())).status == 200
