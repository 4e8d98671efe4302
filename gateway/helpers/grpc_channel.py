"""The grpc.aio channel of an exporter, as its shared gRPC client block (``gateway.configgrpc``) says: TLS or
plaintext, compression, keepalive, balancer, metadata and an authenticator's credentials on every call,
wait_for_ready; re-opened when the TLS files change (a grpc channel cannot swap its credentials, so rotation
means a new channel).

    channel = ExporterChannel(target, secure, config, close_grace=config.timeout)
    export = channel.method("/pkg.Service/Export", Request.SerializeToString, Response.FromString)
    await channel.start(host)
    response = await export(request, timeout=5)   # always on the current channel
    await channel.close()
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from gateway.configauth import ClientHeaders, client_auth
from gateway.configblocks import ReloadingClientTLS
from gateway.configgrpc import GRPCClientConfig, grpc_compression
from gateway.errors import RetryableError

if TYPE_CHECKING:
    from gateway.host import Host

__all__ = ["ExporterChannel"]


class ExporterChannel:
    def __init__(self, target: str, secure: bool, config: GRPCClientConfig, *, close_grace: float,
                 options: list[tuple[str, Any]] | None = None) -> None:
        self.target = target
        self.secure = secure
        self.config = config
        self.tls = config.tls
        self.close_grace = close_grace
        self._options = [*config.channel_options(), *(options or [])]
        if secure and self.tls.server_name_override:
            self._options.append(("grpc.ssl_target_name_override", self.tls.server_name_override))
        self._compression = grpc_compression(config.compression)
        self._metadata = config.metadata()
        self._credentials: ClientHeaders | None = None
        self._reloading: ReloadingClientTLS | None = None
        self._channel: grpc.aio.Channel | None = None
        self._methods: dict[str, tuple[Any, Any]] = {}
        self._calls: dict[str, Any] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def method(self, path: str, request_serializer: Callable[[Any], bytes] | None,
               response_deserializer: Callable[[bytes], Any] | None) -> Callable[..., Any]:
        """An awaitable unary call on whatever channel is current when it is made."""
        self._methods[path] = (request_serializer, response_deserializer)

        async def call(request: Any, **kwargs: Any) -> Any:
            await self._reopen_if_certificates_changed()
            multicallable = self._calls.get(path)
            if multicallable is None:
                raise RetryableError("exporter is not started")
            metadata: Any = self._metadata
            if self._credentials is not None:  # asked per call: a rotated token applies at once
                own: dict[str, Any] = dict(self._metadata)
                metadata = tuple((k.lower(), v) for k, v in self._credentials(own).items())
            return await multicallable(request, metadata=metadata, wait_for_ready=self.config.wait_for_ready or None,
                                       **kwargs)

        return call

    def _open(self) -> None:
        if self.secure:
            credentials = self.tls.grpc_credentials()
            self._channel = grpc.aio.secure_channel(self.target, credentials, self._options, self._compression)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, self._options, self._compression)
        self._calls = {path: self._channel.unary_unary(path, request_serializer=ser, response_deserializer=de)
                       for path, (ser, de) in self._methods.items()}

    async def start(self, host: Host) -> None:
        self._credentials = client_auth(host, self.config.auth, "auth")
        if self.secure:
            self._reloading = ReloadingClientTLS(self.tls)
        self._open()

    async def _reopen_if_certificates_changed(self) -> None:
        if self._reloading is None or not self._reloading.maybe_reload():
            return
        old = self._channel
        self._open()
        if old is not None:  # calls in flight on the old channel get the grace period to finish
            closing = asyncio.get_running_loop().create_task(old.close(self.close_grace))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._calls = {}
