"""What a running component can see of the gateway: extensions, telemetry, and every component's status."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway._host.admin import AdminConfig, AdminServer
from gateway._host.telemetry import Telemetry
from gateway.component import ComponentID, Kind
from gateway.errors import ConfigError

__all__ = ["ComponentStatus", "Host", "Status"]

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


class Host:
    """What ``start(host)`` gives a component: extensions, the admin endpoint, status reporting."""

    def __init__(self, telemetry: Telemetry, admin: AdminServer | None = None) -> None:
        self.telemetry = telemetry
        #: The admin endpoint; components add routes with ``host.admin.add_route(method, path, handler)``.
        self.admin = admin or AdminServer(AdminConfig())
        self.extensions: dict[ComponentID, Any] = {}
        self._status: dict[str, ComponentStatus] = {}
        #: True from the moment every pipeline has started until shutdown begins.
        self.ready = False
        #: The running gateway's ``Stats`` (``gateway._host.stats``: component counters, graph), for zpages.
        self.stats: Any = None

    def extension(self, component_id: ComponentID | str, protocol: type[_P], setting: str) -> _P:
        """The extension ``component_id`` as a ``protocol`` (``Storage``, ``Authenticator``, ...).

        Raises ``ConfigError`` under the config key ``setting`` (e.g. ``sending_queue::storage``) when no such
        extension is listed in ``service::extensions``, or when it lacks what ``protocol`` needs.
        """
        cid = ComponentID.parse(component_id) if isinstance(component_id, str) else component_id
        extension = self.extensions.get(cid)
        if extension is None:
            raise ConfigError(f"{setting}: {cid} is not an extension listed in service::extensions (a "
                              f"{protocol.__name__} extension is needed)")
        if not isinstance(extension, protocol):
            lacks = [name for name in vars(protocol) if not name.startswith("_") and not hasattr(extension, name)]
            raise ConfigError(f"{setting}: extension {cid} is not a {protocol.__name__} extension: "
                              f"{type(extension).__name__} lacks {', '.join(lacks)}")
        return extension

    def report_status(self, kind: Kind, cid: ComponentID, status: Status, error: str | None = None,
                      pipeline: str | None = None) -> None:
        key = f"{pipeline}/{kind.value}:{cid}" if pipeline else f"{kind.value}:{cid}"
        current = self._status.get(key)
        if error is None and current is not None and status in (Status.STOPPING, Status.STOPPED):
            error = current.error  # a component that failed keeps saying why while it stops
        if current is None or current.status is not status or current.error != error:
            self._status[key] = ComponentStatus(status, error, time.time())

    def forget_status(self, kind: Kind, cid: ComponentID, pipeline: str | None = None) -> None:
        """Drop a component that a reload removed, so its last "stopped" does not make the gateway unhealthy."""
        self._status.pop(f"{pipeline}/{kind.value}:{cid}" if pipeline else f"{kind.value}:{cid}", None)

    def component_status(self) -> dict[str, dict[str, Any]]:
        return {key: value.as_dict() for key, value in sorted(self._status.items())}

    def healthy(self) -> bool:
        bad = (Status.PERMANENT_ERROR, Status.STOPPED, Status.STOPPING)
        return self.ready and all(s.status not in bad for s in self._status.values())
