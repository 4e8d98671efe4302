"""TLS rotation on a running gateway process, on both OTLP transports (certificates made with openssl):

- a replaced client CA file *replaces* the trust store: clients of the removed CA are refused;
- a certificate written before its key keeps the previous pair in use (and says so in the log) until the
  matching key arrives, then the new pair is served;
- ``min_version`` is enforced on HTTPS, and refused with a clear error on gRPC, which grpcio cannot enforce.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port

from gateway.testing import make_traces

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path, prefix: str) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={prefix}-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=directory)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={prefix}-{name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=directory)
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("pki")
    return {name: make_pki(root / name, name) for name in ("a", "b")}


def start_gateway(tmp_path: Path, pkis: dict[str, dict[str, Path]], extra_tls: str = "") -> GatewayProcess:
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.pem", "server.key", "ca.pem"):  # the files the gateway follows start as CA a's
        (live / name).write_bytes(pkis["a"][name].read_bytes())
    ports = {"health": free_port(), "grpc": free_port(), "http": free_port()}
    tls = (f'{{cert_file: "{live / "server.pem"}", key_file: "{live / "server.key"}", '
           f'client_ca_file: "{live / "ca.pem"}", reload_interval: 50ms{extra_tls}}}')
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{ports['grpc']}", tls: {tls}}}
      http: {{endpoint: "127.0.0.1:{ports['http']}", tls: {tls}}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: ""}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [debug]}}}}
""")
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    gateway.wait_ready()
    return gateway


def both_cas(pkis: dict[str, dict[str, Path]]) -> bytes:
    return pkis["a"]["ca.pem"].read_bytes() + pkis["b"]["ca.pem"].read_bytes()


def https_ok(port: int, client: dict[str, Path], cafile: Path, maximum: ssl.TLSVersion | None = None) -> bool:
    """One HTTPS request with a client certificate on a new connection: True when answered 200."""
    context = ssl.create_default_context(cadata=both_cas_of(cafile))
    context.load_cert_chain(str(client["client.pem"]), str(client["client.key"]))
    if maximum is not None:
        context.maximum_version = maximum
    body = make_traces(1).SerializeToString()
    request = (f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(request)
            return tls.recv(100).startswith(b"HTTP/1.1 200")
    except (OSError, ssl.SSLError):
        return False


def both_cas_of(cafile: Path) -> str:
    return cafile.read_text()


def grpc_ok(port: int, client: dict[str, Path], roots: bytes) -> bool:
    """One Export on a new channel (a new connection) with a client certificate: True when it succeeds."""
    credentials = grpc.ssl_channel_credentials(roots, client["client.key"].read_bytes(),
                                               client["client.pem"].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        try:
            channel.unary_unary(EXPORT)(make_traces(1).SerializeToString(), timeout=5)
        except grpc.RpcError:
            return False
    return True


def served_certificate(port: int, client: dict[str, Path], alpn: str | None = None) -> str:
    """The subject CN of the certificate the server presents on a new handshake."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(str(client["client.pem"]), str(client["client.key"]))
    if alpn:
        context.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem.encode(), capture_output=True,
                         check=True).stdout.decode()
    return out.rsplit("CN", 1)[1].strip(" =\n")


def eventually(check: Callable[[], bool], what: str, gateway: GatewayProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}\n{gateway.log()}"
        time.sleep(0.05)


def test_a_replaced_client_ca_replaces_the_trust_store_on_both_transports(tmp_path, pkis) -> None:
    gateway = start_gateway(tmp_path, pkis)
    ports, a, b = gateway.ports, pkis["a"], pkis["b"]
    roots = both_cas(pkis)
    combined = tmp_path / "roots.pem"
    combined.write_bytes(roots)
    try:
        assert https_ok(ports["http"], a, combined) and grpc_ok(ports["grpc"], a, roots)
        assert not https_ok(ports["http"], b, combined) and not grpc_ok(ports["grpc"], b, roots)
        (tmp_path / "live" / "ca.pem").write_bytes(b["ca.pem"].read_bytes())  # trust b's clients only now
        eventually(lambda: https_ok(ports["http"], b, combined), "HTTPS never trusted the new CA", gateway)
        eventually(lambda: grpc_ok(ports["grpc"], b, roots), "gRPC never trusted the new CA", gateway)
        assert not https_ok(ports["http"], a, combined), "HTTPS still trusts the removed CA"
        assert not grpc_ok(ports["grpc"], a, roots), "gRPC still trusts the removed CA"
    finally:
        assert gateway.stop() == 0


def test_a_certificate_without_its_key_keeps_the_previous_pair(tmp_path, pkis) -> None:
    gateway = start_gateway(tmp_path, pkis)
    ports, a, b = gateway.ports, pkis["a"], pkis["b"]
    roots = both_cas(pkis)
    combined = tmp_path / "roots.pem"
    combined.write_bytes(roots)
    live = tmp_path / "live"
    try:
        assert served_certificate(ports["http"], a) == "a-server"
        assert served_certificate(ports["grpc"], a, alpn="h2") == "a-server"
        (live / "server.pem").write_bytes(b["server.pem"].read_bytes())  # the new certificate, its key not yet
        eventually(lambda: "do not load" in gateway.log(), "the mismatched pair was not logged", gateway)
        for _ in range(3):  # handshakes keep working with the previous pair
            assert https_ok(ports["http"], a, combined) and grpc_ok(ports["grpc"], a, roots)
            assert served_certificate(ports["http"], a) == "a-server"
            assert served_certificate(ports["grpc"], a, alpn="h2") == "a-server"
            time.sleep(0.1)
        refusals = [line for line in gateway.log().splitlines() if "do not load" in line]
        assert len(refusals) == 2, refusals  # once per transport, not at every check
        assert {'"transport": "grpc"' in line for line in refusals} == {True, False}
        (live / "server.key").write_bytes(b["server.key"].read_bytes())  # the pair is complete
        eventually(lambda: served_certificate(ports["http"], a) == "b-server", "HTTPS kept the old pair", gateway)
        eventually(lambda: served_certificate(ports["grpc"], a, alpn="h2") == "b-server", "gRPC kept the old pair",
                   gateway)
        assert https_ok(ports["http"], a, combined) and grpc_ok(ports["grpc"], a, roots)
    finally:
        assert gateway.stop() == 0


def handshake_version(port: int, client: dict[str, Path], minimum: ssl.TLSVersion, maximum: ssl.TLSVersion,
                      alpn: str | None = None) -> str | None:
    """The TLS version a handshake within [minimum, maximum] settles on, or None when the server refuses it."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(str(client["client.pem"]), str(client["client.key"]))
    context.minimum_version, context.maximum_version = minimum, maximum
    if alpn:
        context.set_alpn_protocols([alpn])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version()
    except (OSError, ssl.SSLError):
        return None


V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(("bounds", "accepted", "refused"), [
    ('min_version: "1.3"', (V13, V13), (V12, V12)),
    ('max_version: "1.2"', (V12, V12), (V13, V13)),
])
def test_tls_version_bounds_are_enforced_on_both_transports(tmp_path, pkis, bounds, accepted, refused) -> None:
    """grpcio cannot bound a server's TLS versions, so the receiver terminates TLS in front of it then."""
    gateway = start_gateway(tmp_path, pkis, extra_tls=f", {bounds}")
    ports, a = gateway.ports, pkis["a"]
    combined = tmp_path / "roots.pem"
    combined.write_bytes(both_cas(pkis))
    try:
        expected = "TLSv1.3" if accepted[0] is V13 else "TLSv1.2"
        assert handshake_version(ports["http"], a, *accepted) == expected
        assert handshake_version(ports["grpc"], a, *accepted, alpn="h2") == expected
        assert handshake_version(ports["http"], a, *refused) is None
        assert handshake_version(ports["grpc"], a, *refused, alpn="h2") is None
        assert https_ok(ports["http"], a, combined) and grpc_ok(ports["grpc"], a, both_cas(pkis))
        # mutual TLS and CA rotation hold on the TLS front too
        assert not grpc_ok(ports["grpc"], pkis["b"], both_cas(pkis))
        (tmp_path / "live" / "ca.pem").write_bytes(pkis["b"]["ca.pem"].read_bytes())
        eventually(lambda: grpc_ok(ports["grpc"], pkis["b"], both_cas(pkis)), "the front kept the old CA", gateway)
        assert not grpc_ok(ports["grpc"], a, both_cas(pkis))
        assert f'"grpc": "127.0.0.1:{ports["grpc"]}"' in gateway.log()  # the address the front bound
    finally:
        assert gateway.stop() == 0
