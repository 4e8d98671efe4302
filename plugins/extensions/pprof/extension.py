"""The pprof extension: ``GET /debug/pprof/profile?seconds=N`` answers with a CPU profile of the gateway taken
over N seconds (default 30, at most 300), gzip'd pprof protobuf as Go's endpoint serves it
(``profiler.py`` beside this file). ``/debug/pprof/`` lists what is served. One profile at a time: a second
request meanwhile gets 409."""

from __future__ import annotations

from aiohttp import web

from gateway import ComponentSettings, DebugServer, Host
from plugins.extensions.pprof.profiler import ProfileBusyError, cpu_profile

from .config import Config

__all__ = ["MAX_SECONDS", "Pprof"]

MAX_SECONDS = 300.0
INDEX = ("otelgw pprof\n\n"
         "/debug/pprof/profile?seconds=N  CPU profile of the gateway over N seconds (default 30), pprof format\n")


class Pprof:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.settings = settings
        self.config = config
        self.logger = settings.telemetry.logger
        self.server: DebugServer | None = None

    async def start(self, host: Host) -> None:
        self.server = DebugServer(f"pprof extension {self.settings.id}", self.config.endpoint,
                                  {"/debug/pprof/": self._index, "/debug/pprof/profile": self._profile}, host=host,
                                  logger=self.logger)
        addresses = await self.server.start()
        self.logger.info("pprof listening on %s", addresses)

    async def shutdown(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def _index(self, request: web.BaseRequest) -> web.Response:
        return web.Response(text=INDEX)

    async def _profile(self, request: web.BaseRequest) -> web.Response:
        try:
            seconds = float(request.query.get("seconds", "30"))
            if not 0 < seconds <= MAX_SECONDS:
                raise ValueError
        except ValueError:
            return web.Response(status=400, text=f"seconds: a number in (0, {MAX_SECONDS:g}]\n")
        try:
            data = await cpu_profile(seconds)
        except ProfileBusyError as exc:
            return web.Response(status=409, text=f"{exc}\n")
        self.logger.info("served a CPU profile", extra={"seconds": seconds, "bytes": len(data)})
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"Content-Disposition": 'attachment; filename="profile"'})
