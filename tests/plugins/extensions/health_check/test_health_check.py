from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.component import ComponentID, Kind
from gateway.host import Host, Status
from gateway.testing import make_host, settings_for
from plugins.extensions.health_check.config import Config
from plugins.extensions.health_check.extension import HealthCheck
from plugins.extensions.health_check.factory import factory


async def get(extension: HealthCheck, path: str) -> tuple[int, Any]:
    url = f"http://{extension.address}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


@pytest.fixture
async def host() -> Host:
    return make_host()


async def started(host: Host, **overrides: Any) -> HealthCheck:
    config = Config(**{"endpoint": "127.0.0.1:0", **overrides})
    extension = factory.create_extension(settings_for(Kind.EXTENSION, "health_check"), config)  # type: ignore[misc]
    await extension.start(host)
    return extension  # type: ignore[no-any-return]


@pytest.fixture
async def extension(host: Host) -> AsyncIterator[HealthCheck]:
    extension = await started(host)
    yield extension
    await extension.shutdown()


RECEIVER, EXPORTER = ComponentID("otlp"), ComponentID("debug")


async def test_ready_goes_from_503_to_200_and_liveness_stays_200(host: Host, extension: HealthCheck) -> None:
    assert extension.address is not None and extension.address.startswith("127.0.0.1:")
    host.report_status(Kind.EXPORTER, EXPORTER, Status.STARTING)
    host.report_status(Kind.RECEIVER, RECEIVER, Status.STARTING)
    for path in ("/health/ready", "/"):
        status, body = await get(extension, path)
        assert status == 503
        assert body["status"] == "Server not available"
        assert body["components"]["receiver:otlp"]["status"] == "starting"
        assert body["components"]["exporter:debug"]["status"] == "starting"
    for path in ("/health", "/health/live"):
        assert (await get(extension, path))[0] == 200

    host.report_status(Kind.EXPORTER, EXPORTER, Status.OK)
    host.report_status(Kind.RECEIVER, RECEIVER, Status.OK)
    assert (await get(extension, "/health/ready"))[0] == 503  # every component is up, but not yet ready
    host.ready = True
    for path in ("/health/ready", "/"):
        status, body = await get(extension, path)
        assert status == 200
        assert body["status"] == "Server available"
        assert set(body["components"]) == {"receiver:otlp", "exporter:debug"}
        assert {"upSince", "uptime"} <= set(body)
    for path in ("/health", "/health/live"):
        status, body = await get(extension, path)
        assert status == 200 and body["status"] == "Server available"


async def test_a_permanent_error_makes_it_not_ready_and_says_why(host: Host, extension: HealthCheck) -> None:
    host.report_status(Kind.RECEIVER, RECEIVER, Status.OK)
    host.ready = True
    assert (await get(extension, "/health/ready"))[0] == 200
    host.report_status(Kind.RECEIVER, RECEIVER, Status.PERMANENT_ERROR, "port in use")
    status, body = await get(extension, "/health/ready")
    assert status == 503
    receiver = body["components"]["receiver:otlp"]
    assert receiver == {"status": "permanent_error", "error": "port in use", "since": receiver["since"]}
    assert (await get(extension, "/health/live"))[0] == 200


async def test_unknown_paths_are_404(extension: HealthCheck) -> None:
    assert (await get(extension, "/nope"))[0] == 404
    assert (await get(extension, "/health/ready/extra"))[0] == 404


async def test_configured_path_is_a_readiness_check(host: Host) -> None:
    extension = await started(host, path="/status")
    try:
        assert (await get(extension, "/status"))[0] == 503
        assert (await get(extension, "/"))[0] == 404
        host.ready = True
        assert (await get(extension, "/status"))[0] == 200
        assert (await get(extension, "/health/live"))[0] == 200
    finally:
        await extension.shutdown()


async def test_configured_path_wins_over_a_fixed_liveness_path(host: Host) -> None:
    extension = await started(host, path="/health")
    try:
        assert (await get(extension, "/health"))[0] == 503  # what a Collector user's probe on /health expects
        assert (await get(extension, "/health/live"))[0] == 200
    finally:
        await extension.shutdown()


async def test_head_requests_are_answered(host: Host, extension: HealthCheck) -> None:
    url = f"http://{extension.address}/health"
    async with aiohttp.ClientSession() as session, session.head(url) as response:
        assert response.status == 200


async def test_shutdown_closes_the_port(host: Host) -> None:
    extension = await started(host)
    address = extension.address
    await extension.shutdown()
    await extension.shutdown()  # idempotent
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session, session.get(f"http://{address}/health"):
            pass


async def test_port_in_use_fails_start(host: Host, extension: HealthCheck) -> None:
    with pytest.raises(OSError):
        await started(host, endpoint=extension.address)
