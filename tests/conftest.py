"""Shared fixtures: a registry with the built-in plugins plus in-test plugins, YAML config helpers, and a real OTLP
sink (``sink``: gateway.testing.otlp_sink.OtlpSink on loopback, stopped after the test)."""

from __future__ import annotations

import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from gwproc import GatewayProcess

#: The ports `make run` and the shipped configs listen on. Tests use free ports only.
WELL_KNOWN_PORTS = (4317, 4318, 8888, 8889, 13133, 13134)


@pytest.fixture
async def sink() -> AsyncIterator[Any]:
    """A real OTLP server (gRPC and HTTP) on free loopback ports, stopped after the test (also on failure)."""
    from gateway.testing.otlp_sink import OtlpSink  # imported when used: most tests need no gRPC server

    server = OtlpSink()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session", autouse=True)
def _well_known_ports_are_taken() -> Iterator[None]:
    """Hold the default ports for the whole run, as a `make run` next to `make test` would: a test that binds a
    fixed port (directly or through a default config) fails here too, not only on a developer's machine."""
    held = []
    for port in WELL_KNOWN_PORTS:
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
        except OSError:  # already taken, by `make run` for instance: just as good
            holder.close()
            continue
        held.append(holder)
    yield
    for holder in held:
        holder.close()


@pytest.fixture(autouse=True)
def _no_gateway_outlives_its_test() -> Iterator[None]:
    """Kill every gateway process a test started and did not stop, also when the test failed."""
    yield
    for gateway in list(GatewayProcess.running):
        gateway.kill()
        GatewayProcess.running.discard(gateway)


@pytest.fixture
def write_yaml(tmp_path: Path):
    """Write a dedented YAML text to a temporary file and return its path as a string."""
    counter = iter(range(1000))

    def write(text: str) -> str:
        path = tmp_path / f"config-{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return str(path)

    return write
