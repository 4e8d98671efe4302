from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway.admin import AdminConfig, AdminServer, json_response


@pytest.fixture
async def admin():
    server = AdminServer(AdminConfig(endpoint="127.0.0.1:0", token="s3cret"))
    await server.start()
    yield server
    await server.stop()


async def get(server, path, token="s3cret", method="GET"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.request(
            method, f"http://{server.address}{path}", headers=headers) as response:
        return response.status, await response.json()


async def test_routes_added_after_start_are_served_and_listed(admin):
    async def hello(request: web.Request) -> web.Response:
        return json_response({"hello": request.query.get("name", "")})

    admin.add_route("GET", "/hello", hello)
    assert await get(admin, "/hello?name=x") == (200, {"hello": "x"})
    assert await get(admin, "/") == (200, {"routes": ["GET /", "GET /hello"]})
    assert (await get(admin, "/hello", method="POST"))[0] == 405
    assert (await get(admin, "/nope"))[0] == 404
    admin.remove_route("GET", "/hello")
    assert (await get(admin, "/hello"))[0] == 404


@pytest.mark.parametrize("token", [None, "wrong", "s3cret-and-more"])
async def test_token_is_required(admin, token):
    status, body = await get(admin, "/", token=token)
    assert status == 401 and body == {"error": "missing or invalid bearer token"}


async def test_a_failing_handler_answers_500_and_the_endpoint_keeps_serving(admin):
    async def broken(request):
        raise RuntimeError("boom")

    admin.add_route("POST", "/broken", broken)
    assert await get(admin, "/broken", method="POST") == (500, {"error": "boom"})
    assert (await get(admin, "/"))[0] == 200


def test_token_never_appears_in_repr():
    assert "s3cret" not in repr(AdminConfig(token="s3cret"))


def test_duplicate_route_is_an_error():
    server = AdminServer(AdminConfig())
    server.add_route("GET", "/x", json_response)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already registered"):
        server.add_route("get", "/x", json_response)  # type: ignore[arg-type]


async def test_service_serves_status_on_its_admin_endpoint(write_yaml):
    from gateway.service import Service
    from tests.gateway.conftest import fake_plugin

    path = write_yaml("""
        receivers: {fakerecv: }
        exporters: {fakeexp: }
        service:
          admin: {endpoint: "127.0.0.1:0", token: t0ken}
          telemetry: {metrics: {address: ""}}
          pipelines: {traces: {receivers: [fakerecv], exporters: [fakeexp]}}
    """)
    service = Service.from_files([path], extra_plugins=[fake_plugin])
    await service.start()
    try:
        status, body = await get(service.admin, "/status", token="t0ken")
        assert status == 200 and body["ready"] is True
        assert body["components"]["exporter:fakeexp"]["status"] == "ok"
    finally:
        await service.shutdown()
