"""The ``basicauth`` extension: on a server, requests must carry HTTP Basic credentials from an htpasswd list;
on a client (an exporter's ``auth``), ``client_auth`` credentials are sent with every request.

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

from gateway import ComponentSettings, ConfigError, Factory, FilePath, Host, Kind, Stability


@dataclass(frozen=True)
class Htpasswd:
    #: htpasswd file path.
    file: FilePath = ""
    #: htpasswd entries written in the config, one per line.
    inline: str = ""


@dataclass(frozen=True, repr=False)
class ClientAuth:
    #: User name sent by a client.
    username: str = ""
    #: Password sent by a client (write it as ${env:OTELGW_PASSWORD}).
    password: str = field(default="", repr=False)


@dataclass(frozen=True, repr=False)
class Config:
    #: Accepted users, as the Collector's basicauth ``htpasswd`` block (file and/or inline): the server side.
    htpasswd: Htpasswd = field(default_factory=Htpasswd)
    #: Credentials an exporter sends when its ``auth::authenticator`` names this extension: the client side.
    client_auth: ClientAuth | None = None

    def validate(self) -> None:
        if self.client_auth is not None:
            if not self.client_auth.username:
                raise ConfigError("client_auth::username: required")
            if ":" in self.client_auth.username:
                raise ConfigError("client_auth::username: must not contain ':' (Basic auth separates it from "
                                  "the password with one)")
            if not (self.htpasswd.file or self.htpasswd.inline):
                return  # client side only
        if not (self.htpasswd.file or self.htpasswd.inline):
            raise ConfigError("htpasswd: file or inline is required (or client_auth, to send credentials)")
        try:
            _parse(self.htpasswd.inline)
        except ValueError as exc:
            raise ConfigError(f"htpasswd::inline: {exc}") from None

    def __repr__(self) -> str:
        client = "" if self.client_auth is None else f", client_auth=<username={self.client_auth.username!r}>"
        return f"Config(htpasswd=<file={self.htpasswd.file!r}, inline=<hidden>>{client})"


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
        self._client_header: dict[str, str] = {}
        if config.client_auth is not None:
            pair = f"{config.client_auth.username}:{config.client_auth.password}".encode()
            self._client_header = {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    async def start(self, host: Host) -> None:
        text = self.config.htpasswd.inline
        if self.config.htpasswd.file:
            text += "\n" + Path(self.config.htpasswd.file).read_text()
        self._users = _parse(text) if text.strip() else {}

    async def shutdown(self) -> None:
        pass

    def client_headers(self) -> dict[str, str]:
        """The Authorization header a client sends (empty without client_auth)."""
        return self._client_header

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
