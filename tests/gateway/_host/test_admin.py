from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from gateway._host.admin import AdminConfig, AdminServer, json_response


@pytest.fixture
async def admin():
    server = AdminServer(AdminConfig(endpoint="127.0.0.1:0", token="s3cret"))
    await server.start()
    yield server
    await server.stop()


async def get(server, path, token="s3cret", method="GET", headers=None, data=None):
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    if method == "POST" and data is None:
        data, headers = b"{}", {"Content-Type": "application/json", **headers}
    async with aiohttp.ClientSession() as session, session.request(
            method, f"http://{server.address}{path}", headers=headers, data=data) as response:
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
    from gateway._host.service import Service
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


async def test_host_origin_and_content_type_are_checked(admin):
    async def mutate(request: web.Request) -> web.Response:
        return json_response({"done": True})

    admin.add_route("POST", "/mutate", mutate)
    port = admin.address.rsplit(":", 1)[1]
    assert await get(admin, "/mutate", method="POST") == (200, {"done": True})
    # DNS rebinding: a page's own name resolved to 127.0.0.1 arrives with that name as Host
    status, body = await get(admin, "/", headers={"Host": f"attacker.example:{port}"})
    assert status == 403 and "Host" in body["error"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        assert (await get(admin, "/", headers={"Host": host}))[0] == 200, host
    # cross-site: Origin of another site, a "null" origin, Sec-Fetch-Site
    for headers in ({"Origin": "https://attacker.example"}, {"Origin": "null"},
                    {"Origin": f"http://localhost:{int(port) + 1}"}, {"Sec-Fetch-Site": "cross-site"}):
        assert (await get(admin, "/mutate", method="POST", headers=headers))[0] == 403, headers
    assert (await get(admin, "/mutate", method="POST", headers={"Origin": f"http://{admin.address}"}))[0] == 200
    # what a form can send is refused even with the token
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, body = await get(admin, "/mutate", method="POST", data=b"{}", headers={"Content-Type": content_type})
        assert status == 415 and "application/json" in body["error"], content_type


@pytest.mark.parametrize("header", ["Bearer s3cr\u00e9t", "Bearer \udcff\udcfe", "Basic", "garbage \u2603"])
async def test_a_malformed_authorization_header_is_401(admin, header):
    async with aiohttp.ClientSession() as session, session.get(
            f"http://{admin.address}/", headers={"Authorization": header.encode("utf-8", "surrogateescape")
                                                 .decode("latin-1")}) as response:
        assert response.status == 401


async def test_without_a_token_one_is_generated_in_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OTELGW_STATE_DIR", str(tmp_path / "state"))
    server = AdminServer(AdminConfig(endpoint="127.0.0.1:0"))
    await server.start()
    try:
        path = tmp_path / "state" / f"admin-{server.address.rsplit(':', 1)[1]}.token"
        assert server.token_file == path
        assert path.stat().st_mode & 0o777 == 0o600
        token = path.read_text().strip()
        assert len(token) >= 40
        assert (await get(server, "/", token=None))[0] == 401
        assert (await get(server, "/", token=token))[0] == 200
    finally:
        await server.stop()
    assert not path.exists()  # removed at stop


async def test_the_cli_reads_the_generated_token_file(tmp_path, monkeypatch):
    import asyncio

    from gateway._host.cli import main

    monkeypatch.setenv("OTELGW_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("OTELGW_ADMIN_TOKEN", raising=False)
    server = AdminServer(AdminConfig(endpoint="127.0.0.1:0"))
    await server.start()

    async def rules(request: web.Request) -> web.Response:
        return json_response({"rules": []})

    server.add_route("GET", "/api/alerts/rules", rules)
    try:
        url = f"http://{server.address}"
        assert await asyncio.to_thread(main, ["alerts", "--admin", url, "rules"]) == 0
        with pytest.raises(SystemExit, match="401"):
            await asyncio.to_thread(main, ["alerts", "--admin", url, "--token-file", str(tmp_path / "none"), "rules"])
    finally:
        await server.stop()
