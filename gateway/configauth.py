"""The ``auth: {authenticator: <extension id>}`` block of servers and clients, as the Collector's configauth.

A server asks the extension whether a request's headers (gRPC metadata) carry valid credentials
(``authenticate(headers) -> bool``); a client asks it for the headers to add to each request
(``client_headers() -> dict[str, str]``, called per request so a rotated token file applies at once), or, when
the extension has ``apply_headers(existing) -> dict[str, str]`` (headers_setter), lets it edit the client's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.component import Authenticator, ClientAuthenticator, ComponentID, HeadersEditor
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["AuthConfig", "ClientHeaders", "ServerCheck", "client_auth", "server_auth"]

ServerCheck = Callable[[Mapping[str, str]], bool]
#: Takes the client's own headers for one request and gives back the headers to send.
ClientHeaders = Callable[[dict[str, str]], dict[str, str]]


@dataclass(frozen=True)
class AuthConfig:
    #: Id of an authenticator extension (bearertokenauth, basicauth, headers_setter) listed in service::extensions.
    authenticator: str = ""

    def validate(self) -> None:
        try:
            ComponentID.parse(self.authenticator)
        except ValueError as exc:
            raise ConfigError(f"authenticator: {exc}") from None



def server_auth(host: Host, auth: AuthConfig | None, key: str, logger: logging.LoggerAdapter[Any]
                ) -> ServerCheck | None:
    """The check a server runs on each request's lower-cased headers; None when ``auth`` is not configured.
    ``key`` is the config path of the block, for the error when the extension is missing."""
    if auth is None:
        return None
    check: ServerCheck = host.extension(auth.authenticator, Authenticator, f"{key}::authenticator").authenticate

    def authenticate(headers: Mapping[str, str]) -> bool:
        # A malformed credential (non-ASCII bytes, garbage) is the client's problem: refused, never a traceback
        # per request that an unauthenticated client could use to flood the log.
        try:
            return check(headers)
        except Exception as exc:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("authenticator %s refused a malformed credential: %s", auth.authenticator,
                             type(exc).__name__)
            return False

    return authenticate


def client_auth(host: Host, auth: AuthConfig | None, key: str) -> ClientHeaders | None:
    """What a client calls before each request for the credential headers; None when ``auth`` is not set."""
    if auth is None:
        return None
    extension = host.extension(auth.authenticator, ClientAuthenticator, f"{key}::authenticator")
    if isinstance(extension, HeadersEditor):
        return extension.apply_headers

    def add(headers: dict[str, str]) -> dict[str, str]:
        return {**headers, **extension.client_headers()}

    return add
