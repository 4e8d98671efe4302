"""``host.extension(id, Protocol)``: extensions found by what they can do, with errors that say what is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway import Authenticator, ComponentID, ConfigError, Host, Storage
from gateway._host.running import RunningHost
from gateway._host.telemetry import Telemetry


class Directories:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def start(self, host: Host) -> None: ...

    async def shutdown(self) -> None: ...

    def queue_directory(self, owner: str) -> tuple[Path, bool]:
        (self.root / owner).mkdir(exist_ok=True)
        return self.root / owner, True


class Passwords:
    async def start(self, host: Host) -> None: ...

    async def shutdown(self) -> None: ...

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        return headers.get("authorization") == "Basic xyz"


@pytest.fixture
def host(tmp_path: Path) -> Host:
    host = RunningHost(Telemetry())
    host.extensions[ComponentID("file_storage")] = Directories(tmp_path)
    host.extensions[ComponentID("basicauth", "in")] = Passwords()
    return host


def test_an_extension_is_found_by_what_it_can_do(host: Host, tmp_path: Path) -> None:
    storage = host.extension("file_storage", Storage, "storage")
    assert storage.queue_directory("exporter_otlp_traces") == (tmp_path / "exporter_otlp_traces", True)
    authenticator = host.extension(ComponentID("basicauth", "in"), Authenticator, "auth::authenticator")
    assert authenticator.authenticate({"authorization": "Basic xyz"})


def test_a_missing_extension_names_the_setting_and_the_id(host: Host) -> None:
    with pytest.raises(ConfigError) as info:
        host.extension("file_storage/other", Storage, "sending_queue::storage")
    assert info.value.messages == ["sending_queue::storage: file_storage/other is not an extension listed in "
                                   "service::extensions (a Storage extension is needed)"]


def test_an_extension_of_the_wrong_kind_says_what_it_lacks(host: Host) -> None:
    with pytest.raises(ConfigError) as info:
        host.extension("basicauth/in", Storage, "storage")
    assert info.value.messages == ["storage: extension basicauth/in is not a Storage extension: Passwords lacks "
                                   "queue_directory"]
