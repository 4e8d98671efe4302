"""resourcedetection: each detector, override, timeout, and a Docker Engine API answering on a unix socket."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.testing import Sink, make_logs, settings_for
from plugins.processors.resourcedetection.detectors import Skip, detect_env, detect_system
from plugins.processors.resourcedetection.factory import factory


def resource(batch: Any) -> dict[str, Any]:
    return {kv.key: kv.value.string_value for kv in batch.resource_logs[0].resource.attributes}


async def run(data: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    config = decode(factory.create_default_config(), data)
    assert validate_tree(config) == []
    sink = Sink()
    processor = factory.create_logs(settings_for(Kind.PROCESSOR, "resourcedetection", Signal.LOGS), config, sink)  # type: ignore[misc]
    await processor.start(None)
    await processor.consume_logs(make_logs(2, service="checkout"))
    await processor.shutdown()
    return resource(sink.batches[Signal.LOGS][0]), processor


def test_env_detector_parses_otel_resource_attributes() -> None:
    assert detect_env({"OTEL_RESOURCE_ATTRIBUTES": "service.name=api, deployment.environment=prod%20eu,k=a=b"}) == {
        "service.name": "api", "deployment.environment": "prod eu", "k": "a=b"}
    with pytest.raises(Skip, match="not set"):
        detect_env({})
    with pytest.raises(Skip, match="'broken' is not key=value"):
        detect_env({"OTEL_RESOURCE_ATTRIBUTES": "a=1,broken"})


def test_system_detector_reads_this_host() -> None:
    found = detect_system(decode(factory.create_default_config(), {"system": {
        "hostname_sources": ["os"], "resource_attributes": {"host.arch": {"enabled": True}}}}).system)
    assert found["host.name"] == socket.gethostname()
    assert found["os.type"] == platform.system().lower()
    machine_id = Path("/etc/machine-id")
    if machine_id.is_file() and machine_id.read_text().strip():
        assert found["host.id"] == machine_id.read_text().strip()
    assert found["host.arch"] in ("amd64", "arm64", platform.machine().lower())


async def test_override_env_k8snode_and_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-env,team=payments")
    monkeypatch.setenv("K8S_NODE_NAME", "node-7")
    monkeypatch.delenv("K8S_NODE_UID", raising=False)
    detectors = ["env", "k8snode", "docker"]
    docker = {"endpoint": "unix:///nonexistent/docker.sock"}
    overridden, _processor = await run({"detectors": detectors, "docker": docker})
    assert overridden == {"service.name": "from-env", "team": "payments", "k8s.node.name": "node-7"}
    kept, _ = await run({"detectors": detectors, "docker": docker, "override": False})
    assert kept["service.name"] == "checkout" and kept["team"] == "payments"


async def _docker_api(path: str, delay: float = 0.0) -> web.AppRunner:
    """The Docker Engine API's /info on a unix socket, with the fields the detector reads."""
    async def info(request: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response({"Name": "docker-host-1", "OSType": "linux", "ID": "abc"})

    app = web.Application()
    app.router.add_get("/info", info)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.UnixSite(runner, path).start()
    return runner


async def test_docker_detector_reads_the_engine_api(tmp_path: Path) -> None:
    path = str(tmp_path / "docker.sock")
    runner = await _docker_api(path)
    try:
        found, _ = await run({"detectors": ["docker"], "docker": {"endpoint": f"unix://{path}"}})
    finally:
        await runner.cleanup()
    assert found["host.name"] == "docker-host-1" and found["os.type"] == "linux"


async def test_a_detector_past_the_timeout_is_skipped_and_the_others_apply(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8S_NODE_NAME", "node-3")
    path = str(tmp_path / "docker.sock")
    runner = await _docker_api(path, delay=1)
    try:
        found, _processor = await run({"detectors": ["docker", "k8snode"], "timeout": "200ms",
                                      "docker": {"endpoint": f"unix://{path}"}})
    finally:
        await runner.cleanup()
    assert found["k8s.node.name"] == "node-3" and "host.name" not in found


@pytest.mark.skipif(not os.path.exists("/var/run/docker.sock"), reason="no Docker socket on this machine")
async def test_docker_detector_against_the_real_engine() -> None:
    found, _ = await run({"detectors": ["docker"]})
    assert found.get("host.name")


@pytest.mark.parametrize(("data", "errors"), [
    ({}, ["detectors: at least one detector is required: env, system, docker, k8snode"]),
    ({"detectors": ["gcp"], "timeout": 0}, ["detectors::0: unknown detector 'gcp'; valid detectors are: env, "
                                            "system, docker, k8snode", "timeout: must be > 0"]),
    ({"detectors": ["system"], "system": {"hostname_sources": ["cname"]}},
     ["system::hostname_sources: must be os or dns, got 'cname'"]),
])
def test_invalid_configs(data: dict[str, Any], errors: list[str]) -> None:
    assert validate_tree(decode(factory.create_default_config(), data)) == errors
