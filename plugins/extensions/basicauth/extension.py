"""The ``basicauth`` extension (server side): requests must carry HTTP Basic credentials from an htpasswd list.

Entries are ``user:password`` (plain) or ``user:{SHA}base64(sha1(password))``; bcrypt and MD5 entries are not
supported and are rejected at start-up. Passwords are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import ComponentSettings, ConfigError, Factory, Kind, Stability


@dataclass(frozen=True)
class Htpasswd:
    #: htpasswd file path.
    file: str = ""
    #: htpasswd entries written in the config, one per line.
    inline: str = ""


@dataclass(frozen=True, repr=False)
class Config:
    #: Accepted users, as the Collector's basicauth ``htpasswd`` block (file and/or inline).
    htpasswd: Htpasswd = field(default_factory=Htpasswd)

    def validate(self) -> None:
        if not (self.htpasswd.file or self.htpasswd.inline):
            raise ConfigError("htpasswd: file or inline is required")
        if self.htpasswd.file and not Path(self.htpasswd.file).is_file():
            raise ConfigError(f"htpasswd::file: file {self.htpasswd.file!r} does not exist")
        try:
            _parse(self.htpasswd.inline)
        except ValueError as exc:
            raise ConfigError(f"htpasswd::inline: {exc}") from None

    def __repr__(self) -> str:
        return f"Config(htpasswd=<file={self.htpasswd.file!r}, inline=<hidden>>)"


def _parse(text: str) -> dict[str, str]:
    users = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, secret = line.partition(":")
        if not sep or not user:
            raise ValueError(f"line {number}: expected user:password")
        if secret.startswith("$"):
            raise ValueError(f"line {number}: only plain and {{SHA}} entries are supported")
        users[user] = secret
    return users


def _matches(secret: str, password: str) -> bool:
    if secret.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
        return hmac.compare_digest(secret[5:], digest)
    return hmac.compare_digest(secret.encode(), password.encode())


class BasicAuth:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.config = config
        self._users: dict[str, str] = {}

    async def start(self, host: Any) -> None:
        text = self.config.htpasswd.inline
        if self.config.htpasswd.file:
            text += "\n" + Path(self.config.htpasswd.file).read_text()
        self._users = _parse(text)

    async def shutdown(self) -> None:
        pass

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except ValueError:  # not base64 (binascii.Error), non-ASCII, or not UTF-8: wrong, not an error of ours
            return False
        secret = self._users.get(user)
        return secret is not None and _matches(secret, password)


def create_default_config() -> Config:
    return Config()


def create_extension(settings: ComponentSettings, config: Config) -> BasicAuth:
    return BasicAuth(settings, config)


factory = Factory(type="basicauth", kind=Kind.EXTENSION, create_default_config=create_default_config,
                  create_extension=create_extension, stability=Stability.BETA)
