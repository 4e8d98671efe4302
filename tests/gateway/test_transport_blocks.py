"""The shared transport blocks (gateway.confighttp, gateway.configgrpc, gateway.configauth), observed on the wire:
gateways on loopback, a real OTLP sink, real grpc and aiohttp clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from inprocess import running

from gateway._host.service import Service
from gateway.component import Kind, Signal
from gateway.configgrpc import GRPCClientConfig, KeepaliveServerConfig, KeepaliveServerParameters
from gateway.configtypes import decode, validate_tree
from gateway.testing import make_logs, make_metrics, make_traces
from gateway.testing.otlp_sink import OtlpSink
from plugins.exporters.otlp_grpc.config import Config as GrpcExporterConfig

TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
QUIET = "telemetry: {metrics: {address: \"\"}}"
#: The rest of a config whose otlp receiver was written above it: traces to the debug exporter.
TO_DEBUG = f"""
        exporters:
          debug:
        service:
          {QUIET}
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
"""


def gateway(tmp_path: Path, yaml: str, name: str = "gateway.yaml") -> contextlib.AbstractAsyncContextManager[Service]:
    return running(tmp_path / name, yaml)


@pytest.fixture
async def sink() -> AsyncIterator[OtlpSink]:
    server = OtlpSink()
    await server.start()
    yield server
    await server.stop()


def http_address(service: Service, receiver: str = "otlp") -> str:
    return str(service.graph.find(Kind.RECEIVER, receiver).http_address)


async def post_traces(address: str, spans: int = 2, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://{address}/v1/traces", data=make_traces(spans).SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", **(headers or {})}) as response:
        return response.status


def forward_to(exporter: str, extra: str = "", extensions: str = "") -> str:
    """A gateway config: OTLP/HTTP in on a free port, traces out through ``exporter``."""
    return f"""
        {extensions}
        receivers:
          otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
        exporters:
          {exporter}
        service:
          {QUIET}
          {extra}
          pipelines:
            traces: {{receivers: [otlp], exporters: [{exporter.split(":")[0]}]}}
    """


# ---------------------------------------------------------------- HTTP client


@pytest.mark.parametrize("compression", ["gzip", "zstd", "snappy", "deflate", "none"])
async def test_http_client_compresses_as_configured_and_the_backend_decodes_it(
        tmp_path: Path, sink: OtlpSink, compression: str) -> None:
    exporter = (f'otlp_http: {{endpoint: "{sink.http_endpoint}", compression: {compression}, '
                f'sending_queue: {{enabled: false}}, headers: {{X-Tenant: blue}}}}')
    async with gateway(tmp_path, forward_to(exporter)) as service:
        assert await post_traces(http_address(service), spans=7) == 200
    received = sink.received(Signal.TRACES)
    assert [r.accepted for r in received] == [True]
    assert received[0].headers.get("content-encoding") == (None if compression == "none" else compression)
    assert received[0].headers["x-tenant"] == "blue"
    assert sink.item_count(Signal.TRACES) == 7


async def test_http_client_goes_through_proxy_url(tmp_path: Path, sink: OtlpSink) -> None:
    seen: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        # A forward proxy gets the absolute URL as the request target; it relays the request as it is.
        seen.append(str(request.url))
        async with aiohttp.ClientSession(auto_decompress=False) as session, session.post(
                str(request.url), data=await request.read(), headers=request.headers) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                headers={"Content-Type": answer.headers["Content-Type"]})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        proxy_port = runner.addresses[0][1]
        exporter = (f'otlp_http: {{endpoint: "{sink.http_endpoint}", proxy_url: "http://127.0.0.1:{proxy_port}", '
                    f'sending_queue: {{enabled: false}}}}')
        async with gateway(tmp_path, forward_to(exporter)) as service:
            assert await post_traces(http_address(service), spans=3) == 200
    finally:
        await runner.cleanup()
    assert seen == [f"{sink.http_endpoint}/v1/traces"]
    assert sink.item_count(Signal.TRACES) == 3


# ---------------------------------------------------------------- HTTP server


async def test_http_server_answers_cors_preflights_and_adds_response_headers(tmp_path: Path) -> None:
    config = """
        receivers:
          otlp:
            protocols:
              http:
                endpoint: "127.0.0.1:0"
                cors: {allowed_origins: ["https://*.example.com"], allowed_headers: [X-Tenant], max_age: 600}
                response_headers: {Strict-Transport-Security: max-age=31536000}
    """ + TO_DEBUG
    async with gateway(tmp_path, config) as service:
        url = f"http://{http_address(service)}/v1/traces"
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,x-tenant"}
        async with aiohttp.ClientSession() as session:
            async with session.options(url, headers=preflight) as allowed:
                assert allowed.status == 204
                assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
                assert allowed.headers["Access-Control-Allow-Methods"] == "POST"
                assert allowed.headers["Access-Control-Allow-Headers"] == "content-type,x-tenant"
                assert allowed.headers["Access-Control-Max-Age"] == "600"
                assert allowed.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with session.options(url, headers={**preflight, "Origin": "https://evil.test"}) as refused:
                assert "Access-Control-Allow-Origin" not in refused.headers
            async with session.options(url, headers={**preflight, "Access-Control-Request-Headers": "x-other"}
                                       ) as bad_header:
                assert "Access-Control-Allow-Origin" not in bad_header.headers
            async with session.post(url, data=make_traces(1).SerializeToString(), headers={
                    "Content-Type": "application/x-protobuf", "Origin": "https://app.example.com"}) as posted:
                assert posted.status == 200
                assert posted.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
                assert posted.headers["Strict-Transport-Security"] == "max-age=31536000"


# ---------------------------------------------------------------- gRPC server


async def test_grpc_server_listens_on_a_unix_socket(tmp_path: Path) -> None:
    socket_path = tmp_path / "otlp.sock"
    config = f"""
        receivers:
          otlp:
            protocols:
              grpc: {{transport: unix, endpoint: "{socket_path}",
                     keepalive: {{server_parameters: {{max_connection_idle: 1m}},
                                 enforcement_policy: {{min_time: 10s, permit_without_stream: true}}}}}}
    """ + TO_DEBUG
    async with gateway(tmp_path, config) as service:
        assert socket_path.is_socket()
        async with grpc.aio.insecure_channel(f"unix:{socket_path}") as channel:
            export = channel.unary_unary(TRACES_EXPORT)
            await export(make_traces(4).SerializeToString(), timeout=10)
        assert service.telemetry.registry.get_sample_value(
            "otelcol_receiver_accepted_spans_total", {"receiver": "otlp", "transport": "grpc"}) == 4


def test_grpc_server_keepalive_becomes_channel_arguments() -> None:
    keepalive = decode(KeepaliveServerConfig(), {
        "server_parameters": {"max_connection_age": "30s", "max_connection_age_grace": "5s", "time": "2h"},
        "enforcement_policy": {"min_time": "10s"}})
    assert keepalive.options() == [
        ("grpc.max_connection_age_ms", 30_000), ("grpc.max_connection_age_grace_ms", 5_000),
        ("grpc.keepalive_time_ms", 7_200_000), ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 0)]
    assert KeepaliveServerConfig(KeepaliveServerParameters(max_connection_idle=-1)).options() == []
    assert validate_tree(KeepaliveServerConfig(KeepaliveServerParameters(max_connection_idle=-1))) == [
        "server_parameters::max_connection_idle: must not be negative"]


# ---------------------------------------------------------------- gRPC client


async def test_grpc_client_round_robin_spreads_calls_over_every_address(tmp_path: Path) -> None:
    sinks = [OtlpSink(), OtlpSink()]
    for each in sinks:
        await each.start()
    try:
        target = "ipv4:" + ",".join(each.grpc_endpoint for each in sinks)
        exporter = (f'otlp_grpc: {{endpoint: "{target}", tls: {{insecure: true}}, balancer_name: round_robin, '
                    f'compression: deflate, wait_for_ready: true, keepalive: {{time: 30s}}, '
                    f'sending_queue: {{enabled: false}}, headers: {{x-tenant: blue}}}}')
        async with gateway(tmp_path, forward_to(exporter)) as service:
            for _ in range(8):
                assert await post_traces(http_address(service), spans=1) == 200
    finally:
        for each in sinks:
            await each.stop()
    counts = [each.item_count(Signal.TRACES) for each in sinks]
    assert sum(counts) == 8 and all(counts), counts  # pick_first would send all 8 to one
    assert all(r.headers["x-tenant"] == "blue" for each in sinks for r in each.requests)


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
async def test_grpc_client_compresses_with_the_configured_algorithm(tmp_path: Path, compression: str) -> None:
    """A backend that has deflate disabled refuses deflate-compressed calls (UNIMPLEMENTED): the algorithm is
    seen by the server, not just written in the config."""
    no_deflate = OtlpSink(grpc_options=[("grpc.compression_enabled_algorithms_bitset", 0b101)])  # identity, gzip
    await no_deflate.start()
    try:
        exporter = (f'otlp_grpc: {{endpoint: "{no_deflate.grpc_endpoint}", tls: {{insecure: true}}, '
                    f'compression: {compression}, sending_queue: {{enabled: false}}, '
                    f'retry_on_failure: {{enabled: false}}}}')
        async with gateway(tmp_path, forward_to(exporter)) as service:
            status = await post_traces(http_address(service), spans=2)
    finally:
        await no_deflate.stop()
    assert (status, no_deflate.item_count(Signal.TRACES)) == ((200, 2) if compression == "gzip" else (400, 0))


@pytest.mark.parametrize("value", ["zstd", "snappy"])
def test_grpc_client_refuses_compressions_grpcio_lacks_naming_the_alternatives(value: str) -> None:
    errors = validate_tree(GrpcExporterConfig(endpoint="c:4317", compression=value))
    assert errors == [f"compression: {value} is not available over gRPC here (grpcio compresses with gzip and "
                      f"deflate only); use gzip, deflate or none, or send {value} over OTLP/HTTP (the otlp_http "
                      f"exporter)"]
    assert GRPCClientConfig(compression="deflate").client_errors() == []


# ---------------------------------------------------------------- client authenticators


@pytest.mark.parametrize("exporter_type", ["otlp_http", "otlp_grpc"])
async def test_client_authenticators_send_credentials_a_gateway_accepts(tmp_path: Path, sink: OtlpSink,
                                                                        exporter_type: str, capfd: Any) -> None:
    """Front gateway --(basicauth client_auth / bearertokenauth token file)--> back gateway that checks them."""
    token_file = tmp_path / "token"
    token_file.write_text("t0ken-from-file\n")
    back = f"""
        extensions:
          basicauth/server: {{htpasswd: {{inline: "alice:s3cret-pass"}}}}
          bearertokenauth/server: {{token: "t0ken-from-file", scheme: Token, header: X-Api-Key}}
        receivers:
          otlp:
            protocols:
              http: {{endpoint: "127.0.0.1:0", auth: {{authenticator: basicauth/server}}}}
              grpc: {{endpoint: "127.0.0.1:0", auth: {{authenticator: bearertokenauth/server}}}}
        exporters:
          otlp_http: {{endpoint: "{sink.http_endpoint}", sending_queue: {{enabled: false}}}}
        service:
          {QUIET}
          extensions: [basicauth/server, bearertokenauth/server]
          pipelines:
            traces: {{receivers: [otlp], exporters: [otlp_http]}}
    """
    async with gateway(tmp_path, back, "back.yaml") as back_service:
        receiver = back_service.graph.find(Kind.RECEIVER, "otlp")
        if exporter_type == "otlp_http":
            authenticator = "basicauth/client"
            exporter = f'otlp_http: {{endpoint: "http://{receiver.http_address}"'
        else:
            authenticator = "bearertokenauth/client"
            exporter = f'otlp_grpc: {{endpoint: "{receiver.grpc_address}", tls: {{insecure: true}}'
        exporter += (f", auth: {{authenticator: {authenticator}}}, sending_queue: {{enabled: false}}, "
                     f"retry_on_failure: {{enabled: false}}}}")
        extensions = f"""
        extensions:
          basicauth/client: {{client_auth: {{username: alice, password: s3cret-pass}}}}
          bearertokenauth/client: {{filename: "{token_file}", scheme: Token, header: X-Api-Key}}
        """
        front = forward_to(exporter, f"extensions: [{authenticator}]", extensions)
        async with gateway(tmp_path, front, "front.yaml") as front_service:
            assert await post_traces(http_address(front_service), spans=5) == 200
            if exporter_type == "otlp_grpc":
                # The client re-reads a rotated token file (checked at most once a second); the server, which
                # still accepts only the old token, refuses the new one: proof that the file is what is sent.
                token_file.write_text("rotated-token\n")
                await asyncio.sleep(1.1)
                assert await post_traces(http_address(front_service), spans=1) != 200
    assert sink.item_count(Signal.TRACES) == 5
    printed = capfd.readouterr()
    assert "s3cret-pass" not in printed.out + printed.err
    assert "t0ken-from-file" not in printed.out + printed.err


# ---------------------------------------------------------------- include_metadata, end to end


async def test_include_metadata_reaches_from_context_batch_metadata_keys_and_headers_setter(
        tmp_path: Path, sink: OtlpSink) -> None:
    """Tenants sent as a request header (HTTP for a, gRPC for b, none for the third request) come out as a span
    attribute (attributes from_context), batched apart (batch metadata_keys) and as the exporter's
    X-Scope-OrgID header (headers_setter) of exactly their own spans."""
    config = f"""
        extensions:
          headers_setter:
            headers: [{{key: X-Scope-OrgID, from_context: x-tenant, default_value: anonymous}}]
        receivers:
          otlp:
            protocols:
              http: {{endpoint: "127.0.0.1:0", include_metadata: true}}
              grpc: {{endpoint: "127.0.0.1:0", include_metadata: true}}
        processors:
          attributes:
            actions: [{{key: tenant, action: upsert, from_context: metadata.x-tenant}}]
          batch: {{metadata_keys: [x-tenant], timeout: 50ms}}
        exporters:
          otlp_http: {{endpoint: "{sink.http_endpoint}", auth: {{authenticator: headers_setter}}}}
        service:
          {QUIET}
          extensions: [headers_setter]
          pipelines:
            traces: {{receivers: [otlp], processors: [attributes, batch], exporters: [otlp_http]}}
    """
    async with gateway(tmp_path, config) as service:
        receiver = service.graph.find(Kind.RECEIVER, "otlp")
        assert await post_traces(receiver.http_address, spans=3, headers={"X-Tenant": "a"}) == 200
        assert await post_traces(receiver.http_address, spans=1) == 200
        async with grpc.aio.insecure_channel(receiver.grpc_address) as channel:
            await channel.unary_unary(TRACES_EXPORT)(make_traces(2).SerializeToString(),
                                                     metadata=(("x-tenant", "b"),), timeout=10)
    by_header: dict[str, list[str]] = {}
    for request in sink.received(Signal.TRACES):
        tenants = [next((kv.value.string_value for kv in span.attributes if kv.key == "tenant"), "")
                   for rs in request.batch.resource_spans for ss in rs.scope_spans for span in ss.spans]
        by_header.setdefault(request.headers["x-scope-orgid"], []).extend(tenants)
    assert by_header == {"a": ["a"] * 3, "b": ["b"] * 2, "anonymous": [""]}


@pytest.mark.parametrize(("exporter", "pipeline", "send"), [
    ("loki", "logs", make_logs), ("prometheus_remote_write", "metrics", make_metrics)])
async def test_loki_and_remote_write_use_the_shared_client_auth_and_proxy(
        tmp_path: Path, exporter: str, pipeline: str, send: Any) -> None:
    """Their bodies are compressed by their protocols; the rest (auth, proxy_url, headers) is the shared client."""
    seen: list[tuple[str, str]] = []

    async def backend(request: web.Request) -> web.Response:  # reached through the proxy below
        seen.append((str(request.url), request.headers.get("Authorization", "")))
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend)
    runner = web.AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        config = f"""
            extensions:
              bearertokenauth: {{token: "push-t0ken"}}
            receivers:
              otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:0"}}}}}}
            exporters:
              {exporter}:
                endpoint: "http://backend.invalid:9/push"
                proxy_url: "http://127.0.0.1:{port}"
                auth: {{authenticator: bearertokenauth}}
            service:
              {QUIET}
              extensions: [bearertokenauth]
              pipelines:
                {pipeline}: {{receivers: [otlp], exporters: [{exporter}]}}
        """
        async with gateway(tmp_path, config) as service:
            receiver = service.graph.find(Kind.RECEIVER, "otlp")
            async with aiohttp.ClientSession() as session, session.post(
                    f"http://{receiver.http_address}/v1/{pipeline}", data=send(3).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"}) as answer:
                assert answer.status == 200
            for _ in range(500):  # sent from the exporter's queue
                if seen:
                    break
                await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()
    assert seen[0] == ("http://backend.invalid:9/push", "Bearer push-t0ken")
