"""The ``bearertokenauth`` extension: on a server, requests must carry ``Authorization: Bearer <token>``; on a
client (an exporter's ``auth``), that header is sent with every request.

Tokens come from ``token``, ``tokens`` and ``filename`` (one per line, re-read when the file changes, at most
once a second). Comparison is constant-time; tokens are never logged or shown in the config's repr. A client
sends ``token``, or else the first line of ``filename`` (so a rotated token file applies without a restart).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway import ComponentSettings, ConfigError, Factory, FilePath, Host, Kind, Stability


@dataclass(frozen=True, repr=False)
class Config:
    #: Header that carries the credential. Default Authorization.
    header: str = "Authorization"
    #: Scheme before the token. Default Bearer; empty sends (and expects) the token alone.
    scheme: str = "Bearer"
    #: One accepted token (write it as ${env:OTELGW_TOKEN}).
    token: str = field(default="", repr=False)
    #: More accepted tokens.
    tokens: list[str] = field(default_factory=list, repr=False)
    #: File with one accepted token per line; re-read when it changes, so tokens rotate without a restart.
    filename: FilePath = ""

    def validate(self) -> None:
        if not (self.token or self.tokens or self.filename):
            raise ConfigError("token: one of token, tokens or filename is required")

    def __repr__(self) -> str:
        count = len(self.tokens) + bool(self.token)
        return f"Config(header={self.header!r}, scheme={self.scheme!r}, tokens=<{count}>, filename={self.filename!r})"


class BearerTokenAuth:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.config = config
        self.header = config.header.lower()
        self._static = [t for t in (config.token, *config.tokens) if t]
        self._from_file: list[str] = []
        self._file_stamp: float | None = None
        self._checked = 0.0

    async def start(self, host: Host) -> None:
        self._refresh(force=True)

    async def shutdown(self) -> None:
        pass

    def _refresh(self, force: bool = False) -> None:
        if not self.config.filename:
            return
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return
        self._checked = now
        try:
            stamp = os.stat(self.config.filename).st_mtime
            if stamp != self._file_stamp:
                lines = Path(self.config.filename).read_text().splitlines()
                self._from_file = [line.strip() for line in lines if line.strip()]
                self._file_stamp = stamp
        except OSError:
            pass  # keep the last tokens read; a rotation in progress must not lock everyone out

    def client_headers(self) -> dict[str, str]:
        """The header a client sends: ``token``, or the first token of ``filename``."""
        self._refresh()
        token = self.config.token or next(iter(self._from_file), "") or next(iter(self.config.tokens), "")
        if not token:
            return {}
        return {self.config.header: f"{self.config.scheme} {token}" if self.config.scheme else token}

    def authenticate(self, headers: Mapping[str, str]) -> bool:
        """``headers`` with lower-case keys (gRPC metadata or HTTP headers)."""
        self._refresh()
        value = headers.get(self.header, "")
        if self.config.scheme:
            scheme, _, credential = value.partition(" ")
            if scheme.lower() != self.config.scheme.lower() or not credential:
                return False
        else:
            credential = value
            if not credential:
                return False
        try:
            given = credential.strip().encode("ascii")
        except UnicodeEncodeError:  # garbage from the client: not a token of ours, and not an error of ours
            return False
        # Compare against every token, so the time taken does not tell which one was close.
        return sum(hmac.compare_digest(given, t.encode()) for t in (*self._static, *self._from_file)) > 0


def create_default_config() -> Config:
    return Config()


def create_extension(settings: ComponentSettings, config: Config) -> BearerTokenAuth:
    return BearerTokenAuth(settings, config)


factory = Factory(type="bearertokenauth", kind=Kind.EXTENSION, create_default_config=create_default_config,
                  create_extension=create_extension, stability=Stability.BETA)
