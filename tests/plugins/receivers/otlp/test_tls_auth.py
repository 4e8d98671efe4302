"""TLS, mutual TLS and authentication on both OTLP receiver transports, and certificate rotation."""

from __future__ import annotations

import asyncio
import base64
import ssl
import textwrap
from pathlib import Path

import aiohttp
import grpc
import pytest
from pki import make_pki  # tests/pki.py, on sys.path through tests/conftest.py

from gateway._host.service import Service
from gateway.component import Kind
from gateway.testing import make_traces

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def gateway(tmp_path: Path, pki: dict[str, Path]):  # type: ignore[no-untyped-def]
    for name in ("server.pem", "server.key"):  # copies, so the rotation test can replace them
        (tmp_path / name).write_bytes(pki[name].read_bytes())
    tls = (f'{{cert_file: "{tmp_path / "server.pem"}", key_file: "{tmp_path / "server.key"}", '
           f'client_ca_file: "{pki["ca.pem"]}", reload_interval: 50ms}}')
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          bearertokenauth: {{token: "{TOKEN}"}}
          basicauth: {{htpasswd: {{inline: "alice:wonderland"}}}}
        receivers:
          otlp:
            protocols:
              grpc: {{endpoint: "127.0.0.1:0", tls: {tls}, auth: {{authenticator: bearertokenauth}}}}
              http: {{endpoint: "127.0.0.1:0", tls: {tls}, auth: {{authenticator: basicauth}}}}
        exporters:
          debug:
        service:
          extensions: [bearertokenauth, basicauth]
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
    """))
    service = Service.from_files([str(config)])
    await service.start()
    yield service
    await service.shutdown()


def client_context(pki: dict[str, Path], with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    if with_cert:
        context.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
    return context


async def post(service: Service, context: ssl.SSLContext, authorization: str | None) -> int:
    address = service.graph.find(Kind.RECEIVER, "otlp").http_address
    headers = {"Content-Type": "application/x-protobuf", **({"Authorization": authorization} if authorization else {})}
    async with aiohttp.ClientSession() as session, session.post(
            f"https://{address}/v1/traces", data=make_traces(2).SerializeToString(), headers=headers,
            ssl=context) as response:
        return response.status


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bad_requests(service: Service, transport: str) -> float:
    return service.telemetry.registry.get_sample_value(
        "otelgw_receiver_bad_requests_total",
        {"receiver": "otlp", "transport": transport, "reason": "unauthenticated"}) or 0.0


async def test_https_with_mutual_tls_and_basic_auth(gateway: Service, pki: dict[str, Path]) -> None:
    assert await post(gateway, client_context(pki), basic("alice", "wonderland")) == 200
    assert await post(gateway, client_context(pki), basic("alice", "wrong")) == 401
    assert await post(gateway, client_context(pki), None) == 401
    assert bad_requests(gateway, "http") == 2
    with pytest.raises(aiohttp.ClientError):  # no client certificate: the handshake fails
        await post(gateway, client_context(pki, with_cert=False), basic("alice", "wonderland"))


async def test_grpc_with_mutual_tls_and_bearer_token(gateway: Service, pki: dict[str, Path]) -> None:
    address = gateway.graph.find(Kind.RECEIVER, "otlp").grpc_address
    credentials = grpc.ssl_channel_credentials(pki["ca.pem"].read_bytes(), pki["client.key"].read_bytes(),
                                               pki["client.pem"].read_bytes())
    async with grpc.aio.secure_channel(address, credentials) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        body = make_traces(3).SerializeToString()
        await export(body, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await export(body, metadata=(("authorization", "Bearer nope"),), timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await export(body, timeout=5)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert bad_requests(gateway, "grpc") == 2
    assert gateway.telemetry.registry.get_sample_value(
        "otelcol_receiver_accepted_spans_total", {"receiver": "otlp", "transport": "grpc"}) == 3


async def test_certificates_are_reloaded_when_their_files_change(gateway: Service, tmp_path: Path,
                                                                 pki: dict[str, Path]) -> None:
    rotated = tmp_path / "rotated"
    rotated.mkdir()
    new = make_pki(rotated, prefix="new-")
    address = gateway.graph.find(Kind.RECEIVER, "otlp").http_address
    host, port = address.rsplit(":", 1)

    async def served_issuer() -> str:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
        _, writer = await asyncio.open_connection(host, int(port), ssl=context)
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return ssl.DER_cert_to_PEM_cert(der)

    assert await served_issuer() == ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(pki["server.pem"].read_text()))
    (tmp_path / "server.key").write_bytes(new["server.key"].read_bytes())
    (tmp_path / "server.pem").write_bytes(new["server.pem"].read_bytes())
    expected = ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(new["server.pem"].read_text()))
    for _ in range(100):
        if await served_issuer() == expected:
            break
        await asyncio.sleep(0.05)
    assert await served_issuer() == expected
