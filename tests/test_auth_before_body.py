"""Credentials are checked before a request body is read, on a real gateway process: unauthenticated senders of
large requests are refused without the gateway holding their bodies (its peak RSS barely moves), and malformed
``Authorization`` values are a quiet 401/UNAUTHENTICATED."""

from __future__ import annotations

import contextlib
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess, free_port

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BIG = 48 * 1024 * 1024
TOKEN = "a-long-enough-test-token"


def start(tmp_path: Path) -> GatewayProcess:
    ports = {"health": free_port(), "grpc": free_port(), "http": free_port()}
    path = tmp_path / "gateway.yaml"
    path.write_text(f"""
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
  bearertokenauth: {{token: "{TOKEN}"}}
receivers:
  otlp:
    protocols:
      grpc: {{endpoint: "127.0.0.1:{ports['grpc']}", auth: {{authenticator: bearertokenauth}}}}
      http: {{endpoint: "127.0.0.1:{ports['http']}", auth: {{authenticator: bearertokenauth}}}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: [health_check, bearertokenauth]
  telemetry: {{metrics: {{address: ""}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [debug]}}}}
""")
    gateway = GatewayProcess(path, ports, tmp_path / "gateway.log").start()
    gateway.wait_ready()
    return gateway


def grpc_export(port: int, body: bytes, token: str | None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(EXPORT)(body, metadata=metadata, timeout=20)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def http_status(port: int, body: bytes, authorization: bytes) -> bytes:
    head = (b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
            b"Authorization: " + authorization + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head)
        with contextlib.suppress(OSError):
            s.sendall(body)  # the server may answer and close before taking it all
        return s.recv(200).split(b"\r\n", 1)[0]


def test_unauthenticated_large_requests_are_refused_before_their_bodies_are_read(tmp_path: Path) -> None:
    gateway = start(tmp_path)
    try:
        assert grpc_export(gateway.ports["grpc"], b"", TOKEN) is grpc.StatusCode.OK
        baseline = gateway.status_kb("VmHWM")
        body = b"\x0a" + b"\xff" * (BIG - 1)  # never parsed: refused first
        with ThreadPoolExecutor(4) as pool:
            grpc_codes = list(pool.map(lambda t: grpc_export(gateway.ports["grpc"], body, t), [None, "wrong"] * 2))
            http_lines = list(pool.map(lambda a: http_status(gateway.ports["http"], body, a),
                                       [b"Bearer wrong", b"Bearer \xff\xfe"] * 2))
        assert grpc_codes == [grpc.StatusCode.UNAUTHENTICATED] * 4
        assert all(line.startswith(b"HTTP/1.1 401") for line in http_lines), http_lines
        grown_mib = (gateway.status_kb("VmHWM") - baseline) / 1024
        # 8 requests of 48 MiB: read whole, they would take hundreds of MiB
        assert grown_mib < 48, f"the gateway's peak RSS grew by {grown_mib:.0f} MiB"
        assert "Traceback" not in gateway.log()
    finally:
        assert gateway.stop() == 0
