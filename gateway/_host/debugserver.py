"""The listener of the debugging extensions (``zpages``, ``pprof``): the shared HTTP server
(``gateway.confighttp.HTTPServer``) with its Host check on, localhost by default, so a web page that rebinds its
domain name to 127.0.0.1 cannot read it (a browser sends that domain as ``Host``; only loopback names, IP
literals and the configured host are answered)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from gateway.confighttp import Handler, HTTPServer, HTTPServerConfig

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["DebugServer"]


class DebugServer(HTTPServer):
    """``endpoint``: a ``host:port``, or the component's whole HTTP server block (tls, auth, cors...)."""

    def __init__(self, component: str, endpoint: str | HTTPServerConfig, routes: Mapping[str, Handler], *,
                 host: Host, logger: logging.LoggerAdapter[Any] | None = None) -> None:
        config = endpoint if isinstance(endpoint, HTTPServerConfig) else HTTPServerConfig(endpoint=endpoint)
        super().__init__(component, config, routes, host=host, logger=logger, check_host=True)

    @property
    def endpoint(self) -> str:
        return self.config.endpoint
