"""What a running component can see of the gateway: the ``Host`` protocol it gets in ``start(host)``.

The host is an interface, not a class a plugin builds: the gateway passes its own implementation, and tests get
one from ``gateway.testing.make_host()``. Everything a component may ask of the gateway is listed here.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from aiohttp import web

    from gateway.component import ComponentID, Kind

__all__ = ["AdminRoutes", "ComponentStatus", "GatewayStats", "Host", "Status"]

_P = TypeVar("_P")


class Status(enum.StrEnum):
    STARTING = "starting"
    OK = "ok"
    RECOVERABLE_ERROR = "recoverable_error"
    PERMANENT_ERROR = "permanent_error"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ComponentStatus:
    status: Status
    error: str | None = None
    since: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value,
                               "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since))}
        if self.error:
            out["error"] = self.error
        return out


class AdminRoutes(Protocol):
    """The admin endpoint (``service::telemetry::admin``): routes a component adds are served behind the admin
    token. Remove them in ``shutdown`` so a reload that drops the component drops its routes."""

    def add_route(self, method: str, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                  *, public: bool = False) -> None: ...

    def remove_route(self, method: str, path: str) -> None: ...


class GatewayStats(Protocol):
    """The running gateway seen whole, for pages such as zpages: the snapshot ``otelgw top`` and ``/api/stats``
    show, and each pipeline's members."""

    def snapshot(self) -> dict[str, Any]: ...

    def pipelines(self) -> dict[str, list[tuple[str, str]]]:
        """Each pipeline id to its members in order, as ``(role, component id)`` with role ``receiver``,
        ``processor`` or ``exporter`` (a connector appears under the role it plays in that pipeline)."""
        ...


class Host(Protocol):
    """What ``start(host)`` gives a component.

    - ``extension(id, Protocol, setting)``: an extension listed in ``service::extensions`` as ``Protocol``
      (``Storage``, ``Authenticator``, ``ClientAuthenticator``), or a ``ConfigError`` under ``setting``;
    - ``report_status``: a component's own status (``Status``), shown by health_check, zpages and ``otelgw top``;
    - ``ready``, ``healthy()``, ``component_status()``: the gateway's health, for health endpoints;
    - ``admin``: the admin endpoint's routes; ``stats``: the whole gateway's figures (None until it runs);
    - ``drain_deadline``: while the gateway shuts down, when (``time.monotonic()``) its grace period ends.
    """

    @property
    def admin(self) -> AdminRoutes: ...

    @property
    def ready(self) -> bool:
        """True from the moment every pipeline has started until shutdown begins."""
        ...

    @property
    def stats(self) -> GatewayStats | None: ...

    @property
    def drain_deadline(self) -> float | None:
        """Set when shutdown begins under ``--grace-period``: the ``time.monotonic()`` by which components must
        have let go of what they hold (a little before the grace period ends, so what could not be delivered is
        still counted and logged). None otherwise (running, reloading, or no grace period)."""
        ...

    def extension(self, component_id: ComponentID | str, protocol: type[_P], setting: str) -> _P:
        """The extension ``component_id`` as a ``protocol``. Raises ``ConfigError`` under the config key
        ``setting`` (e.g. ``sending_queue::storage``) when no such extension is listed in
        ``service::extensions``, or when it lacks what ``protocol`` needs."""
        ...

    def report_status(self, kind: Kind, cid: ComponentID, status: Status, error: str | None = None,
                      pipeline: str | None = None) -> None: ...

    def component_status(self) -> dict[str, dict[str, Any]]:
        """Every component's status by ``[pipeline/]kind:id``, as ``{"status", "since"[, "error"]}``."""
        ...

    def healthy(self) -> bool:
        """Ready, and no component failed or stopping."""
        ...
