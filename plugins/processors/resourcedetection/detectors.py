"""The detectors: each returns the resource attributes it finds, or raises ``Skip`` saying why it found none."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

import aiohttp

from .config import DockerConfig, K8sNodeConfig, SystemConfig

__all__ = ["Skip", "detect_docker", "detect_env", "detect_k8snode", "detect_system"]

_MACHINE_ID_FILES = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_SYSTEM_DEFAULTS = {"host.name": True, "host.id": True, "os.type": True, "host.arch": False,
                    "os.description": False}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "x86", "i686": "x86",
         "ppc64le": "ppc64", "s390x": "s390x"}


class Skip(Exception):
    """The detector does not apply here (no Docker socket, no env var); the message says why."""


def detect_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """OTEL_RESOURCE_ATTRIBUTES: ``key=value`` pairs separated by commas, values percent-encoded."""
    text = (environ if environ is not None else os.environ).get("OTEL_RESOURCE_ATTRIBUTES", "").strip()
    if not text:
        raise Skip("OTEL_RESOURCE_ATTRIBUTES is not set")
    attributes = {}
    for pair in text.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise Skip(f"OTEL_RESOURCE_ATTRIBUTES: {pair.strip()!r} is not key=value; none of it is used")
        attributes[key.strip()] = unquote(value.strip())
    return attributes


def _machine_id() -> str | None:
    for path in _MACHINE_ID_FILES:
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return None


def detect_system(config: SystemConfig) -> dict[str, str]:
    enabled = {**_SYSTEM_DEFAULTS, **{k: t.enabled for k, t in config.resource_attributes.items()}}
    attributes: dict[str, str] = {}
    if enabled["host.name"]:
        for source in config.hostname_sources:
            name = socket.getfqdn() if source == "dns" else socket.gethostname()
            if name and name != "localhost":
                attributes["host.name"] = name
                break
    if enabled["host.id"]:
        machine_id = _machine_id()
        if machine_id:
            attributes["host.id"] = machine_id
    if enabled["os.type"]:
        attributes["os.type"] = platform.system().lower()
    if enabled["host.arch"]:
        attributes["host.arch"] = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    if enabled["os.description"]:
        attributes["os.description"] = f"{platform.system()} {platform.release()}"
    return attributes


async def detect_docker(config: DockerConfig) -> dict[str, str]:
    """host.name and os.type of the Docker host, from the Engine API's /info."""
    path = config.endpoint.removeprefix("unix://")
    if not os.path.exists(path):
        raise Skip(f"no Docker socket at {path}")
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as session, \
            session.get("http://docker/info") as response:
        if response.status != 200:
            raise Skip(f"Docker answered HTTP {response.status}")
        info = await response.json()
    attributes = {}
    if info.get("Name"):
        attributes["host.name"] = str(info["Name"])
    if info.get("OSType"):
        attributes["os.type"] = str(info["OSType"]).lower()
    return attributes


def detect_k8snode(config: K8sNodeConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """k8s.node.name (and k8s.node.uid when given) from the downward API environment."""
    env = environ if environ is not None else os.environ
    name = env.get(config.node_from_env_var, "")
    if not name:
        raise Skip(f"{config.node_from_env_var} is not set (give it spec.nodeName through the downward API)")
    attributes = {"k8s.node.name": name}
    uid = env.get(config.node_uid_from_env_var, "")
    if uid:
        attributes["k8s.node.uid"] = uid
    return attributes
