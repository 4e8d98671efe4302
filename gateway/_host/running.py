"""The host object the service hands every component in ``start(host)``: the implementation of the public
``gateway.host.Host`` protocol, plus what only the host itself uses (the extension table it fills while starting
extensions, ``forget_status`` for components a reload removed, the telemetry registry)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TypeVar

from gateway._host.admin import AdminConfig, AdminServer
from gateway._host.telemetry import Telemetry
from gateway.component import ComponentID, Kind
from gateway.errors import ConfigError
from gateway.host import ComponentStatus, Status

if TYPE_CHECKING:
    from gateway.host import GatewayStats

__all__ = ["RunningHost"]

_P = TypeVar("_P")


class RunningHost:
    """Extensions by id, every component's status, the admin endpoint and the gateway's stats."""

    def __init__(self, telemetry: Telemetry, admin: AdminServer | None = None) -> None:
        self.telemetry = telemetry
        self.admin = admin or AdminServer(AdminConfig())
        #: Filled by the service as it starts each extension listed in ``service::extensions``.
        self.extensions: dict[ComponentID, Any] = {}
        self._status: dict[str, ComponentStatus] = {}
        self.ready = False
        self.stats: GatewayStats | None = None
        #: Set by ``Service.run`` when shutdown begins (``Host.drain_deadline``).
        self.drain_deadline: float | None = None

    def extension(self, component_id: ComponentID | str, protocol: type[_P], setting: str) -> _P:
        cid = ComponentID.parse(component_id) if isinstance(component_id, str) else component_id
        extension = self.extensions.get(cid)
        if extension is None:
            name = protocol.__name__
            raise ConfigError(f"{setting}: {cid} is not an extension listed in service::extensions "
                              f"({'an' if name[0] in 'AEIOU' else 'a'} {name} extension is needed)")
        if not isinstance(extension, protocol):
            lacks = [name for name in vars(protocol) if not name.startswith("_") and not hasattr(extension, name)]
            raise ConfigError(f"{setting}: extension {cid} is not a {protocol.__name__} extension: "
                              f"{type(extension).__name__} lacks {', '.join(lacks)}")
        return extension

    def report_status(self, kind: Kind, cid: ComponentID, status: Status, error: str | None = None,
                      pipeline: str | None = None) -> None:
        key = _status_key(kind, cid, pipeline)
        current = self._status.get(key)
        if error is None and current is not None and status in (Status.STOPPING, Status.STOPPED):
            error = current.error  # a component that failed keeps saying why while it stops
        if current is None or current.status is not status or current.error != error:
            self._status[key] = ComponentStatus(status, error, time.time())

    def forget_status(self, kind: Kind, cid: ComponentID, pipeline: str | None = None) -> None:
        """Drop a component that a reload removed, so its last "stopped" does not make the gateway unhealthy."""
        self._status.pop(_status_key(kind, cid, pipeline), None)

    def component_status(self) -> dict[str, dict[str, Any]]:
        return {key: value.as_dict() for key, value in sorted(self._status.items())}

    def healthy(self) -> bool:
        bad = (Status.PERMANENT_ERROR, Status.STOPPED, Status.STOPPING)
        return self.ready and all(s.status not in bad for s in self._status.values())


def _status_key(kind: Kind, cid: ComponentID, pipeline: str | None) -> str:
    return f"{pipeline}/{kind.value}:{cid}" if pipeline else f"{kind.value}:{cid}"
