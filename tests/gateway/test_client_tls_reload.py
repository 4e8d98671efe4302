"""Exporters follow rotated client TLS files (CA, client certificate) without a restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gateway.component import Kind, Signal
from gateway.configblocks import ReloadingClientTLS, TLSClientConfig
from gateway.configtypes import decode
from gateway.testing import make_traces, settings_for
from gateway.testing.otlp_sink import OtlpSink

OLD_CA = Path(__file__).resolve().parents[1] / "plugins" / "exporters" / "otlp_grpc" / "testdata" / "localhost.crt"


def new_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for localhost and 127.0.0.1 (a CA the exporter does not trust yet)."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_files_are_checked_once_per_interval_and_reread_on_change(tmp_path):
    ca = tmp_path / "ca.pem"
    shutil.copy(OLD_CA, ca)
    clock = Clock()
    tls = ReloadingClientTLS(TLSClientConfig(ca_file=str(ca), reload_interval=60), clock)
    assert tls.maybe_reload() is False  # nothing changed, and the interval has not passed
    ca.write_text(ca.read_text() + "\n")
    assert tls.maybe_reload() is False  # changed, but not checked before the interval
    clock.now += 61
    assert tls.maybe_reload() is True
    clock.now += 61
    assert tls.maybe_reload() is False  # unchanged since the reload
    ca.write_text("-----BEGIN CERTIFICATE-----\nhalf written")
    clock.now += 61
    assert tls.maybe_reload() is False  # unreadable: keep the old material and try again later
    shutil.copy(OLD_CA, ca)
    os.utime(ca, (time.time() + 5, time.time() + 5))
    clock.now += 61
    assert tls.maybe_reload() is True


def test_reloading_off(tmp_path):
    clock = Clock()
    tls = ReloadingClientTLS(TLSClientConfig(ca_file=str(OLD_CA), reload_interval=0), clock)
    clock.now += 10**6
    assert tls.maybe_reload() is False


@needs_openssl
@pytest.mark.parametrize("exporter_type", ["otlp_grpc", "otlp_http"])
async def test_exporter_trusts_a_rotated_ca_without_restart(tmp_path, exporter_type):
    from plugins.exporters.otlp_grpc.factory import factory as grpc_factory
    from plugins.exporters.otlp_http.factory import factory as http_factory

    cert, key = new_certificate(tmp_path)
    ca = tmp_path / "ca.pem"
    shutil.copy(OLD_CA, ca)  # the exporter trusts the wrong CA at first
    sink = OtlpSink(tls=(str(cert), str(key)))
    await sink.start()
    factory = grpc_factory if exporter_type == "otlp_grpc" else http_factory
    endpoint = sink.grpc_endpoint if exporter_type == "otlp_grpc" else sink.http_endpoint
    config = decode(factory.create_default_config(), {
        "endpoint": endpoint, "tls": {"ca_file": str(ca), "reload_interval": "20ms"}, "timeout": "2s",
        "retry_on_failure": {"initial_interval": "50ms", "max_interval": "100ms", "max_elapsed_time": "30s"}})
    exporter = factory.create_traces(settings_for(Kind.EXPORTER, exporter_type, Signal.TRACES), config)
    await exporter.start(None)
    try:
        await exporter.consume_traces(make_traces(spans=4))
        await asyncio.sleep(0.4)
        assert sink.item_count(Signal.TRACES) == 0  # refused: the server's certificate is not trusted yet
        shutil.copy(cert, ca)  # rotate the CA file in place
        deadline = time.monotonic() + 15
        while sink.item_count(Signal.TRACES) < 4:
            assert time.monotonic() < deadline, "the exporter did not pick up the new CA"
            await asyncio.sleep(0.05)
    finally:
        await exporter.shutdown()
        await sink.stop()
    assert sink.item_count(Signal.TRACES) == 4
