"""otelgw: a telemetry gateway in the spirit of the OpenTelemetry Collector. This module is the plugin SDK.

A plugin imports what ``__all__`` lists here, and these packages: ``gateway.testing`` (test helpers: batches,
sinks, settings), ``gateway.protos`` (generated messages: Jaeger, Loki, Prometheus), ``gateway.ottl`` (the OTTL
compiler), ``gateway.prometheus`` (OTLP to Prometheus translation), ``gateway.otlpjson`` (OTLP/JSON) and
``gateway.client`` (who sent a batch: the client metadata of ``include_metadata``). The host's internals live
in ``gateway._host`` and may change without notice; a plugin never imports them (a test checks).

- The contract (``gateway.component``, ``gateway.hookspecs``): ``hookimpl``, ``Factory``, ``Kind``, ``Signal``,
  ``Stability``, ``ComponentID``, ``ComponentSettings``, the create signatures ``CreateReceiver``,
  ``CreateProcessor``, ``CreateConnector``, ``CreateExporter``, ``CreateExtension``; ``Component``, the consumers
  ``TracesConsumer``, ``MetricsConsumer``, ``LogsConsumer`` (``Consumer``: any of them), ``BatchConsumer``,
  ``Batch``, ``consume``, ``count_items``; ``CliCommand`` for ``otelgw_cli_commands``.
- The host a component sees in ``start(host)``: ``Host``, a protocol (``host.extension(id, Protocol, setting)``,
  ``report_status``, health, ``host.admin`` as ``AdminRoutes``, ``host.stats`` as ``GatewayStats``); tests get
  one from ``gateway.testing.make_host()``. ``Status``; extension protocols ``Authenticator``,
  ``ClientAuthenticator``, ``HeadersEditor`` (a client authenticator that edits the client's headers),
  ``Storage``; ``AdminServer``, ``json_response`` (the admin endpoint and its answers); ``DebugServer`` (the
  pprof and zpages listeners).
- Errors (``gateway.errors``: the tree is in its docstring): ``OtelgwError``, ``ConfigError``, ``PluginError``,
  ``ConsumeError``, ``RetryableError``, ``PermanentError``, ``OverloadedError``, ``TooLargeError``,
  ``SkipBatchError``, ``StatusMapping``, ``status_for``.
- Config: ``decode``, ``validate_tree``, ``Duration``, ``parse_duration``, ``FilePath`` (a path ``validate``
  does not open; ``run`` checks it), tagged unions ``Tagged`` and ``tagged_block`` (the Collector's ``type:``
  keyed policies), ``optional_sections``, ``raise_if`` (a ``ConfigError`` of every message); shared
  blocks ``TLSClientConfig``, ``TLSServerConfig``, ``ReloadingClientTLS``, ``ReloadingServerTLS``,
  ``QueueConfig``, ``RetryConfig``;
  addresses ``split_host_port``, ``format_addresses``, ``listen_error``; the Collector's server and client
  blocks ``GRPCServerConfig``, ``GRPCClientConfig``, ``HTTPServerConfig``, ``HTTPClientConfig``, ``CORSConfig``,
  ``MIB``, ``HTTPClient``, ``HTTPServer`` (a GET server as the block says); authentication ``AuthConfig``,
  ``server_auth``, ``client_auth``, ``server_middleware``; ``ClientInfo`` (who sent a batch); ``shared_ports``
  (listeners shared by workers).
- Processors and connectors: ``Processor`` (override ``process_traces`` ...), ``FlushingConnector``,
  ``SharedComponents``/``SharedComponent`` (one instance per id across signals); attribute values
  ``hashable_value``, ``key_value``, ``OVERFLOW_ATTRIBUTE``; receiver bytes ``attached``, ``unchanged``,
  ``rewritten``, ``wire_bytes``, and batches of them ``WireBatch``, ``hand_on``, ``message_of``; admission
  control ``Budget``, ``Reservation``, ``AdmissionGate``, ``register_admission_gate``, ``unregister_admission_gate``.
- Exporters: ``ExporterHelper`` (queue, retry, timeout), ``Backoff`` (the one retry policy),
  ``PartialSuccess``, ``grpc_error``, ``http_error``, ``permanent_http_error``, ``parse_retry_after``,
  ``USER_AGENT``, ``ExporterChannel``; the OTLP/gRPC client ``OtlpGrpcExporter``, ``OtlpGrpcConfig``,
  ``parse_grpc_endpoint``; request building ``Part``, ``PartSender``, ``Split``, ``offloaded``, ``split``;
  protobuf wire pieces ``varint``, ``field``, ``timestamp``, ``any_value_to_python``; trace runs ``Envelope``,
  ``EnvelopeTable``, ``assemble``, ``split_request``, ``stamp``, ``STATUS_BITS``; write-ahead log
  ``SegmentLog``, ``StorageUnavailable``; the C twins of per-span loops ``spanscan`` (None where the optional
  extension is not built: then use the Python twins); ``check_request`` (whether a serialized export request is
  one the protobuf parser accepts, and its item count, without parsing where the extension is built).
- Commands that talk to a running gateway: ``AdminClient``, ``add_admin_options``, ``admin_token``,
  ``alerts_summary``; config files ``load_config_files``, ``safe_yaml_load``.
"""

from __future__ import annotations

from gateway._host.admin import AdminServer, json_response
from gateway._host.admission import Budget, Reservation
from gateway._host.admission import Gate as AdmissionGate
from gateway._host.admission import register as register_admission_gate
from gateway._host.admission import unregister as unregister_admission_gate
from gateway._host.cli_admin import AdminClient, add_admin_options, admin_token, alerts_summary
from gateway._host.confmap import load_files as load_config_files
from gateway._host.confmap import safe_load as safe_yaml_load
from gateway._host.debugserver import DebugServer
from gateway._host.workers.context import shared_ports
from gateway.client import ClientInfo
from gateway.commands import CliCommand
from gateway.component import (
    Authenticator,
    Batch,
    BatchConsumer,
    ClientAuthenticator,
    Component,
    ComponentID,
    ComponentSettings,
    Consumer,
    CreateConnector,
    CreateExporter,
    CreateExtension,
    CreateProcessor,
    CreateReceiver,
    Factory,
    HeadersEditor,
    Kind,
    LogsConsumer,
    MetricsConsumer,
    Signal,
    Stability,
    Storage,
    TracesConsumer,
    consume,
    count_items,
)
from gateway.configauth import AuthConfig, client_auth, server_auth
from gateway.configblocks import ReloadingClientTLS, ReloadingServerTLS, TLSClientConfig, TLSServerConfig
from gateway.configgrpc import MIB, GRPCClientConfig, GRPCServerConfig
from gateway.confighttp import CORSConfig, HTTPClient, HTTPClientConfig, HTTPServer, HTTPServerConfig, server_middleware
from gateway.configtypes import (
    Duration,
    FilePath,
    Tagged,
    decode,
    optional_sections,
    parse_duration,
    raise_if,
    tagged_block,
    validate_tree,
)
from gateway.errors import (
    ConfigError,
    ConsumeError,
    OtelgwError,
    OverloadedError,
    PermanentError,
    PluginError,
    RetryableError,
    SkipBatchError,
    StatusMapping,
    TooLargeError,
    status_for,
)
from gateway.helpers.attributes import OVERFLOW_ATTRIBUTE, hashable_value, key_value
from gateway.helpers.exporter import (
    USER_AGENT,
    Backoff,
    ExporterHelper,
    PartialSuccess,
    QueueConfig,
    RetryConfig,
    grpc_error,
    http_error,
    parse_retry_after,
    permanent_http_error,
)
from gateway.helpers.flushing_connector import FlushingConnector
from gateway.helpers.grpc_channel import ExporterChannel
from gateway.helpers.native import spanscan
from gateway.helpers.otlp_grpc import OtlpGrpcConfig, OtlpGrpcExporter, parse_grpc_endpoint
from gateway.helpers.parts import Part, PartSender, Split, offloaded
from gateway.helpers.processor import Processor
from gateway.helpers.protowire import any_value_to_python, field, timestamp, varint
from gateway.helpers.shared import SharedComponent, SharedComponents
from gateway.helpers.split import split
from gateway.helpers.trace_runs import STATUS_BITS, Envelope, EnvelopeTable, assemble, split_request, stamp
from gateway.helpers.walog import SegmentLog, StorageUnavailable
from gateway.helpers.wireschema import check as check_request
from gateway.hookspecs import hookimpl
from gateway.host import AdminRoutes, GatewayStats, Host, Status
from gateway.netaddr import format_addresses, listen_error, split_host_port
from gateway.wirebytes import WireBatch, attached, hand_on, message_of, rewritten, unchanged, wire_bytes

__all__ = [
    "MIB",
    "OVERFLOW_ATTRIBUTE",
    "STATUS_BITS",
    "USER_AGENT",
    "AdminClient",
    "AdminRoutes",
    "AdminServer",
    "AdmissionGate",
    "AuthConfig",
    "Authenticator",
    "Backoff",
    "Batch",
    "BatchConsumer",
    "Budget",
    "CORSConfig",
    "CliCommand",
    "ClientAuthenticator",
    "ClientInfo",
    "Component",
    "ComponentID",
    "ComponentSettings",
    "ConfigError",
    "ConsumeError",
    "Consumer",
    "CreateConnector",
    "CreateExporter",
    "CreateExtension",
    "CreateProcessor",
    "CreateReceiver",
    "DebugServer",
    "Duration",
    "Envelope",
    "EnvelopeTable",
    "ExporterChannel",
    "ExporterHelper",
    "Factory",
    "FilePath",
    "FlushingConnector",
    "GRPCClientConfig",
    "GRPCServerConfig",
    "GatewayStats",
    "HTTPClient",
    "HTTPClientConfig",
    "HTTPServer",
    "HTTPServerConfig",
    "HeadersEditor",
    "Host",
    "Kind",
    "LogsConsumer",
    "MetricsConsumer",
    "OtelgwError",
    "OtlpGrpcConfig",
    "OtlpGrpcExporter",
    "OverloadedError",
    "Part",
    "PartSender",
    "PartialSuccess",
    "PermanentError",
    "PluginError",
    "Processor",
    "QueueConfig",
    "ReloadingClientTLS",
    "ReloadingServerTLS",
    "Reservation",
    "RetryConfig",
    "RetryableError",
    "SegmentLog",
    "SharedComponent",
    "SharedComponents",
    "Signal",
    "SkipBatchError",
    "Split",
    "Stability",
    "Status",
    "StatusMapping",
    "Storage",
    "StorageUnavailable",
    "TLSClientConfig",
    "TLSServerConfig",
    "Tagged",
    "TooLargeError",
    "TracesConsumer",
    "WireBatch",
    "add_admin_options",
    "admin_token",
    "alerts_summary",
    "any_value_to_python",
    "assemble",
    "attached",
    "check_request",
    "client_auth",
    "consume",
    "count_items",
    "decode",
    "field",
    "format_addresses",
    "grpc_error",
    "hand_on",
    "hashable_value",
    "hookimpl",
    "http_error",
    "json_response",
    "key_value",
    "listen_error",
    "load_config_files",
    "message_of",
    "offloaded",
    "optional_sections",
    "parse_duration",
    "parse_grpc_endpoint",
    "parse_retry_after",
    "permanent_http_error",
    "raise_if",
    "register_admission_gate",
    "rewritten",
    "safe_yaml_load",
    "server_auth",
    "server_middleware",
    "shared_ports",
    "spanscan",
    "split",
    "split_host_port",
    "split_request",
    "stamp",
    "status_for",
    "tagged_block",
    "timestamp",
    "unchanged",
    "unregister_admission_gate",
    "validate_tree",
    "varint",
    "wire_bytes",
]
