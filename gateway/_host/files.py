"""What ``otelgw run`` checks before it starts and ``validate`` does not: the files a config names.

Fields typed :data:`gateway.configtypes.FilePath` (certificates, keys, token files, htpasswd lists) are read by
their components at run time. ``validate`` is a dry run of the configuration and never opens them (a CI job has
no secrets mounted); ``run`` checks that each given one is a readable file and names every one that is not, with
its component, key and path, before anything starts.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from gateway.configtypes import FilePath
from gateway.errors import ConfigError

__all__ = ["check_files", "file_fields"]

_MARKER = typing.get_args(FilePath)[1]


def file_fields(config: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(key path, file)`` of every non-empty :data:`FilePath` field in ``config`` and the blocks in it."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        hints = typing.get_type_hints(type(config), include_extras=True)
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            key = f"{path}::{field.name}" if path else field.name
            hint = hints.get(field.name)
            if typing.get_origin(hint) is Annotated and typing.get_args(hint)[1] is _MARKER:
                if value:
                    yield key, str(value)
            else:
                yield from file_fields(value, key)
    elif isinstance(config, list | tuple):
        for i, item in enumerate(config):
            yield from file_fields(item, f"{path}::{i}")
    elif isinstance(config, Mapping):
        for key, item in config.items():
            yield from file_fields(item, f"{path}::{key}")


def check_files(config: Any) -> None:
    """Raise ``ConfigError`` naming every file a component of ``config`` (a ``GatewayConfig``) needs and cannot
    read: ``exporters::otlp::tls::ca_file: file '/etc/ca.pem' does not exist``."""
    errors = []
    for (kind, cid), component in config.components.items():
        for key, name in file_fields(component.config, f"{kind.section}::{cid}"):
            if not os.path.isfile(name):
                errors.append(f"{key}: file {name!r} does not exist")
            elif not os.access(name, os.R_OK):
                errors.append(f"{key}: file {name!r} is not readable by this process")
    if errors:
        raise ConfigError(errors)
