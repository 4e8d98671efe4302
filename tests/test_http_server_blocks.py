"""The shared HTTP server block (``gateway.confighttp.HTTPServer``) on the servers that answer requests rather
than take data: the health_check, zpages and pprof extensions and the prometheus exporter's /metrics. One gateway
with TLS on the health check, an authenticator and CORS on /metrics and zpages, real clients over 127.0.0.1;
then ``otelgw validate`` on bad keys of those blocks."""

from __future__ import annotations

import ssl
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from inprocess import running  # tests/inprocess.py, on sys.path through tests/conftest.py
from pki import make_pki  # tests/pki.py, on sys.path through tests/conftest.py

from gateway._host.service import Service
from gateway.component import ComponentID, Kind
from gateway.testing import make_metrics

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "metrics-scraper-token"
ORIGIN = "https://grafana.example.com"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def gateway(tmp_path: Path, pki: dict[str, Path]) -> AsyncIterator[Service]:
    async with running(tmp_path / "gateway.yaml", f"""
        extensions:
          bearertokenauth: {{token: "{TOKEN}"}}
          health_check:
            endpoint: "127.0.0.1:0"
            tls: {{cert_file: "{pki['server.pem']}", key_file: "{pki['server.key']}"}}
            response_headers: {{X-Served-By: otelgw}}
          zpages:
            endpoint: "127.0.0.1:0"
            auth: {{authenticator: bearertokenauth}}
          pprof: {{endpoint: "127.0.0.1:0"}}
        receivers:
          otlp:
            protocols:
              http: {{endpoint: "127.0.0.1:0"}}
        exporters:
          prometheus:
            endpoint: "127.0.0.1:0"
            auth: {{authenticator: bearertokenauth}}
            cors: {{allowed_origins: ["https://*.example.com"], allowed_headers: [Authorization], max_age: 600}}
            max_request_body_size: 1024
        service:
          extensions: [bearertokenauth, health_check, zpages, pprof]
          telemetry: {{metrics: {{address: ""}}}}
          pipelines:
            metrics: {{receivers: [otlp], exporters: [prometheus]}}
    """) as service:
        yield service


def metrics_url(service: Service) -> str:
    return f"http://{service.graph.find(Kind.EXPORTER, 'prometheus').address}/metrics"


def extension_address(service: Service, name: str) -> str:
    extension = service.host.extensions[ComponentID(name)]
    return str(extension.address if name == "health_check" else extension.server.address)


async def test_health_check_serves_https_only_with_its_response_headers(gateway: Service,
                                                                         pki: dict[str, Path]) -> None:
    address = extension_address(gateway, "health_check")
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://{address}/health/ready", ssl=context) as response:
            assert response.status == 200, await response.text()
            assert response.headers["X-Served-By"] == "otelgw"
            assert (await response.json())["status"] == "Server available"
        async with session.get(f"https://{address}/", ssl=context) as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientError):  # plain HTTP on the TLS port gets no answer
            async with session.get(f"http://{address}/health") as response:
                await response.read()
        with pytest.raises(aiohttp.ClientError):  # a client that does not trust the CA refuses the server
            async with session.get(f"https://{address}/health") as response:
                await response.read()


async def test_metrics_need_the_authenticators_credentials(gateway: Service) -> None:
    receiver = gateway.graph.find(Kind.RECEIVER, "otlp").http_address
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{receiver}/v1/metrics", data=make_metrics(points=3).SerializeToString(),
                                headers={"Content-Type": "application/x-protobuf"}) as response:
            assert response.status == 200
        async with session.get(metrics_url(gateway)) as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"
            assert "requests_total" not in await response.text()
        async with session.get(metrics_url(gateway), headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with session.get(metrics_url(gateway), headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
            assert "requests_total{" in await response.text()
        # zpages takes the same block: the same authenticator guards its pages
        zpages = extension_address(gateway, "zpages")
        async with session.get(f"http://{zpages}/debug/servicez") as response:
            assert response.status == 401
        async with session.get(f"http://{zpages}/debug/servicez",
                               headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and "servicez" in await response.text()


async def test_cors_on_metrics(gateway: Service) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    async with aiohttp.ClientSession() as session:
        # a preflight carries no credentials and is answered without them
        async with session.options(metrics_url(gateway), headers=preflight) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "GET" in response.headers["Access-Control-Allow-Methods"].split(", ")
            assert response.headers["Access-Control-Allow-Headers"] == "authorization"
            assert response.headers["Access-Control-Max-Age"] == "600"
        async with session.options(metrics_url(gateway), headers={**preflight, "Origin": "https://evil.test"}
                                   ) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
        async with session.get(metrics_url(gateway), headers={"Origin": ORIGIN,
                                                              "Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == ORIGIN
        async with session.get(metrics_url(gateway), headers={"Origin": "https://evil.test",
                                                              "Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers


async def test_a_body_over_max_request_body_size_is_refused(gateway: Service) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(metrics_url(gateway), headers=headers, data=b"x" * 2048) as response:
            assert response.status == 413
            assert "max_request_body_size (1024 bytes)" in await response.text()
        async with session.post(metrics_url(gateway), headers=headers) as response:
            assert response.status == 405 and response.headers["Allow"] == "GET, HEAD"


async def test_debug_servers_keep_their_host_check(gateway: Service) -> None:
    pprof = extension_address(gateway, "pprof")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{pprof}/debug/pprof/", headers={"Host": "rebound.example"}) as response:
            assert response.status == 403
        async with session.get(f"http://{pprof}/debug/pprof/") as response:
            assert response.status == 200 and "otelgw pprof" in await response.text()


@pytest.mark.parametrize(("block", "expected"), [
    ("health_check: {cors: {allowed_origin: ['*']}}",
     "extensions::health_check::cors::allowed_origin: unknown key; valid keys are: allowed_headers, "
     "allowed_origins, max_age"),
    ("health_check: {tls: {cert_file: /etc/otelgw/tls.crt}}",
     "extensions::health_check::tls::cert_file: cert_file and key_file are required for a TLS server"),
    ("zpages: {response_headers: {'Bad Header': x}}",
     "extensions::zpages::response_headers::Bad Header: not a valid HTTP header name"),
    ("zpages: {auth: {authenticatr: bearertokenauth}}",
     "extensions::zpages::auth::authenticatr: unknown key; valid keys are: authenticator"),
    ("health_check: {max_request_body_size: 0}",
     "extensions::health_check::max_request_body_size: must be > 0, got 0"),
    ("health_check: {endpoint: localhost}",
     "extensions::health_check::endpoint: invalid endpoint 'localhost': expected host:port"),
])
def test_validate_names_a_bad_key_of_the_block(tmp_path: Path, block: str, expected: str) -> None:
    name = block.partition(":")[0]
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        extensions:
          {block}
        receivers:
          otlp:
            protocols:
              http: {{endpoint: "127.0.0.1:0"}}
        exporters:
          debug:
        service:
          extensions: [{name}]
          pipelines:
            traces: {{receivers: [otlp], exporters: [debug]}}
    """))
    result = subprocess.run([sys.executable, "-m", "gateway", "validate", "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_validate_names_a_bad_key_of_the_prometheus_exporters_block(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent("""
        receivers:
          otlp:
            protocols:
              http: {endpoint: "127.0.0.1:0"}
        exporters:
          prometheus: {endpoint: "127.0.0.1:0", cors: {allowed_origins: ["*"], max_age: -1}, tls: {key_file: k}}
        service:
          pipelines:
            metrics: {receivers: [otlp], exporters: [prometheus]}
    """))
    result = subprocess.run([sys.executable, "-m", "gateway", "validate", "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "exporters::prometheus::cors::max_age: must be >= 0, got -1" in result.stderr
    assert "exporters::prometheus::tls::cert_file: cert_file and key_file are required for a TLS server" \
        in result.stderr
