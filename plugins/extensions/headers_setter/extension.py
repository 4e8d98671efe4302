"""The ``headers_setter`` extension: per-request headers for exporters, from the client metadata of the data sent.

A receiver with ``include_metadata: true`` keeps each request's headers with its data (``gateway.client``); an
exporter whose ``auth::authenticator`` names this extension asks it for headers before each request, while that
data's sender is current. So a tenant id received as ``X-Scope-OrgID`` leaves with the same header, per tenant.
Batches merged from several senders have no single sender: use batch ``metadata_keys`` (or none) so that each
outgoing batch keeps its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ComponentSettings, ConfigError, Factory, Host, Kind, Stability, client

_ACTIONS = ("insert", "update", "upsert", "delete")


@dataclass(frozen=True)
class Header:
    #: Header name to set.
    key: str = ""
    #: insert, update, upsert (default) or delete. The exporter's own headers are the existing ones: insert sets
    #: the header only when the exporter has none of that name, update only when it has one.
    action: str = "upsert"
    #: A fixed value.
    value: str | None = field(default=None, repr=False)
    #: The client metadata key (a request header name, as received) whose value is sent.
    from_context: str | None = None
    #: Sent when from_context finds nothing; without it, the header is left out then.
    default_value: str | None = field(default=None, repr=False)

    def validate(self) -> None:
        errors = []
        if not self.key:
            errors.append("key: required")
        if self.action not in _ACTIONS:
            errors.append(f"action: must be one of {', '.join(_ACTIONS)}, got {self.action!r}")
        elif self.action != "delete" and (self.value is None) == (self.from_context is None):
            errors.append("value: exactly one of value and from_context is required")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: The headers to set on each outgoing request.
    headers: list[Header] = field(default_factory=list)

    def validate(self) -> None:
        if not self.headers:
            raise ConfigError("headers: at least one header is required")


class HeadersSetter:
    def __init__(self, settings: ComponentSettings, config: Config) -> None:
        self.config = config

    async def start(self, host: Host) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    def client_headers(self) -> dict[str, str]:
        """The headers to set for the request being prepared (with no exporter headers to merge with)."""
        return self.apply_headers({})

    def apply_headers(self, existing: dict[str, str]) -> dict[str, str]:
        """``existing`` (the exporter's own headers) with this extension's actions applied, for the data whose
        sender is current. Names compare case-insensitively, as HTTP's and gRPC's do."""
        out = dict(existing)
        names = {name.lower(): name for name in out}
        for header in self.config.headers:
            present = names.get(header.key.lower())
            if header.action == "delete" or (header.action == "insert" and present is not None) \
                    or (header.action == "update" and present is None):
                if header.action == "delete" and present is not None:
                    del out[present]
                continue
            value = header.value
            if header.from_context is not None:
                value = client.from_context(header.from_context)
                if value is None:
                    value = header.default_value
            if value is None:
                continue
            if present is not None:
                del out[present]
            names[header.key.lower()] = header.key
            out[header.key] = value
        return out


def create_default_config() -> Config:
    return Config()


def create_extension(settings: ComponentSettings, config: Config) -> HeadersSetter:
    return HeadersSetter(settings, config)


factory = Factory(type="headers_setter", kind=Kind.EXTENSION, create_default_config=create_default_config,
                  create_extension=create_extension, stability=Stability.ALPHA)
