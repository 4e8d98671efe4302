"""One view of a gateway run as several workers, served by the supervisor on the configured addresses.

- Self-metrics (``service::telemetry::metrics``) and every ``prometheus`` exporter: each worker's exposition,
  every sample labelled ``worker="<index>"`` and grouped under one HELP/TYPE per family, so
  ``sum without (worker) (...)`` is the whole gateway. The supervisor adds ``otelgw_workers`` (running workers)
  and ``otelgw_worker_restarts_total``.
- ``health_check`` endpoints: 200 only when every worker answers 200 on the same path; the body lists each.
- Admin (``service::admin``, same token rules): ``GET /status`` (ready when every worker is) and
  ``POST /-/reload`` (every worker reloads; ok when all did); the status page, ``/api/stats``, ``/api/tap`` and
  ``/api/alerts...`` combine every worker's answer (``adminview.py``).

Every worker serves its own copy of these on a loopback port (``context.adjust_config``) and reports it
(``worker.py``); the supervisor asks them all at each request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from gateway._host.admin import AdminServer, json_response
from gateway._host.telemetry import CONTENT_TYPE_LATEST
from gateway.component import Kind
from gateway.netaddr import format_addresses, listen_error, split_host_port

from .adminview import AdminView

if TYPE_CHECKING:
    from .supervisor import Supervisor

__all__ = ["View", "merge_expositions"]

log = logging.getLogger("otelgw.workers")

#: Seconds the supervisor waits for one worker's answer.
ASK_TIMEOUT_S = 5.0


def _labelled(line: str, worker: int) -> str:
    """``name{a="b"} 1`` → ``name{worker="0",a="b"} 1``; ``name 1`` → ``name{worker="0"} 1``."""
    brace, space = line.find("{"), line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        rest = line[brace + 1:]
        return f'{line[:brace]}{{worker="{worker}"{"," if not rest.startswith("}") else ""}{rest}'
    return f'{line[:space]}{{worker="{worker}"}}{line[space:]}'


def merge_expositions(expositions: dict[int, str]) -> str:
    """Prometheus text expositions of the workers as one: each family once, its samples from every worker."""
    families: dict[str, tuple[list[str], list[str]]] = {}  # family → (HELP/TYPE lines, samples)
    for worker, text in sorted(expositions.items()):
        current: tuple[list[str], list[str]] | None = None
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                name = line.split(" ", 3)[2]
                current = families.get(name)
                if current is None:
                    current = families[name] = ([], [])
                if len(current[0]) < 2 and line not in current[0]:
                    current[0].append(line)
            elif line and not line.startswith("#"):
                if current is None:
                    current = families.setdefault("", ([], []))
                current[1].append(_labelled(line, worker))
    return "".join("\n".join(head + samples) + "\n" for head, samples in families.values())


class View:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._runners: list[web.AppRunner] = []
        self._admin: AdminServer | None = None
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ asking the workers

    def reports(self) -> dict[int, dict[str, Any]]:
        """The latest report of every running worker that has written one."""
        context, found = self.supervisor.context, {}
        for index in range(self.supervisor.count):
            pid = self.supervisor.pid(index)
            try:
                report = json.loads(context.report_path(index).read_text())
            except (OSError, ValueError):
                continue
            if pid is not None and report.get("pid") == pid:
                found[index] = report
        return found

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client the supervisor asks its workers with (open while the view runs)."""
        assert self._session is not None, "the view is not running"
        return self._session

    async def _ask(self, address: str | None, path: str, method: str = "GET",
                   headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, str]:
        if not address:
            return 0, "not serving it"
        try:
            async with self.session.request(method, f"http://{address}{path}", headers=headers,
                                            json=(body if body is not None else {}) if method == "POST" else None,
                                             timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT_S)) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return 0, f"no answer: {type(exc).__name__}"

    async def ask_all(self, address_of: Callable[[dict[str, Any]], str | None], path: str, method: str = "GET",
                      headers: dict[str, str] | None = None, body: Any = None) -> dict[int, tuple[int, str]]:
        """Every worker's answer, with status 0 for a worker that is not running or did not answer."""
        reports = self.reports()
        indexes = list(range(self.supervisor.count))
        answers = await asyncio.gather(*(
            self._ask(address_of(reports[i]), path, method, headers, body) if i in reports
            else _missing() for i in indexes))
        return dict(zip(indexes, answers, strict=True))

    # ------------------------------------------------------------------ endpoints

    def _exposition(self, address_of: Callable[[dict[str, Any]], str | None], path: str,
                    own: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            answers = await self.ask_all(address_of, path)
            texts = {i: text for i, (status, text) in answers.items() if status == 200}
            body = merge_expositions(texts)
            if own:
                body += self._own_metrics()
            return web.Response(body=body.encode(), headers={"Content-Type": CONTENT_TYPE_LATEST})
        return handle

    def _own_metrics(self) -> str:
        supervisor = self.supervisor
        running = sum(1 for i in range(supervisor.count) if supervisor.pid(i) is not None)
        lines = ["# HELP otelgw_workers Worker processes running (otelgw run --workers).",
                 "# TYPE otelgw_workers gauge", f"otelgw_workers {running}",
                 "# HELP otelgw_worker_restarts_total Times a worker died and was started again.",
                 "# TYPE otelgw_worker_restarts_total counter"]
        lines += [f'otelgw_worker_restarts_total{{worker="{w.index}"}} {w.restarts}' for w in supervisor.workers]
        return "\n".join(lines) + "\n"

    def _health(self, key: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            answers = await self.ask_all(_endpoint(key), request.path_qs)
            healthy = all(status == 200 for status, _ in answers.values())
            workers = [{"worker": i, "pid": self.supervisor.pid(i), "status": status, "answer": _json_or_text(text)}
                       for i, (status, text) in answers.items()]
            return json_response({"status": "Server available" if healthy else "Server not available",
                                  "workers": workers}, 200 if healthy else 503)
        return handle

    async def _status(self, request: web.Request) -> web.Response:
        headers = {"Authorization": f"Bearer {self.supervisor.token}"}
        answers = await self.ask_all(lambda r: r.get("admin"), "/status", headers=headers)
        workers = [{"worker": i, "pid": self.supervisor.pid(i), **(_json_or_text(text) if status == 200
                                                                     else {"ready": False, "error": text})}
                   for i, (status, text) in answers.items()]
        return json_response({"ready": all(w.get("ready") for w in workers), "workers": workers})

    async def _reload(self, request: web.Request) -> web.Response:
        headers = {"Authorization": f"Bearer {self.supervisor.token}"}
        answers = await self.ask_all(lambda r: r.get("admin"), "/-/reload", "POST", headers)
        workers = [{"worker": i, "status": status, **(_json_or_text(text) if status in (200, 400)
                                                       else {"error": text})} for i, (status, text) in answers.items()]
        ok = all(status == 200 for status, _ in answers.values())
        return json_response({"reloaded": ok, "workers": workers}, 200 if ok else 400)

    # ------------------------------------------------------------------ lifecycle

    async def _serve(self, what: str, endpoint: str, routes: list[tuple[str, Any]]) -> None:
        app = web.Application()
        for path, handler in routes:
            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = split_host_port(endpoint)
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            raise listen_error(what, endpoint, exc) from None
        self._runners.append(runner)
        log.info("serving one view of every worker", extra={"what": what,
                                                             "address": format_addresses(runner.addresses)})

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        config = self.supervisor.config
        try:
            metrics = config.telemetry.metrics
            if metrics.level != "none" and metrics.address:
                await self._serve("service::telemetry::metrics", metrics.address,
                                  [("/metrics", self._exposition(lambda r: r.get("metrics"), "/metrics", True))])
            for cid in config.extensions:
                if cid.type == "health_check":
                    cc = config.get(Kind.EXTENSION, cid)
                    await self._serve(f"health_check extension {cid}", cc.config.endpoint,
                                      [("/{tail:.*}", self._health(f"extension:{cid}"))])
            for kind, cid in config.components:
                if kind is Kind.EXPORTER and cid.type == "prometheus" and any(
                        cid in p.exporters for p in config.pipelines.values()):
                    await self._serve(f"prometheus exporter {cid}", config.get(kind, cid).config.endpoint,
                                      [("/metrics", self._exposition(_endpoint(f"exporter:{cid}"), "/metrics",
                                                                     False))])
            if config.admin.endpoint:
                self._admin = AdminServer(config.admin)
                self._admin.add_route("GET", "/status", self._status)
                self._admin.add_route("POST", "/-/reload", self._reload)
                AdminView(self).register(self._admin)
                await self._admin.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _endpoint(key: str) -> Callable[[dict[str, Any]], str | None]:
    return lambda report: report["endpoints"].get(key)


async def _missing() -> tuple[int, str]:
    return 0, "worker not running"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text[:500]}
