"""otelgw: a telemetry gateway in the spirit of the OpenTelemetry Collector.

The public surface for plugin authors is what ``__all__`` lists, plus the packages ``gateway.testing`` (test
helpers), ``gateway.protos`` (generated messages), ``gateway.ottl`` (the OTTL compiler), ``gateway.prometheus``
(OTLP → Prometheus translation), ``gateway.otlpjson`` (OTLP/JSON) and ``gateway.client`` (who sent a batch: the
client metadata of ``include_metadata``). The host's internals live in
``gateway._host`` and may change without notice: a plugin never imports them.
"""

from __future__ import annotations

from gateway._host.admin import AdminServer, json_response
from gateway._host.admission import Budget, Reservation
from gateway._host.admission import Gate as AdmissionGate
from gateway._host.admission import register as register_admission_gate
from gateway._host.admission import unregister as unregister_admission_gate
from gateway._host.debugserver import DebugServer
from gateway._host.workers.context import shared_ports
from gateway.client import ClientInfo
from gateway.component import (
    Batch,
    ComponentID,
    ComponentSettings,
    Factory,
    Kind,
    Signal,
    Stability,
    consume,
    count_items,
)
from gateway.configauth import AuthConfig, client_auth, server_auth
from gateway.configblocks import ReloadingClientTLS, ReloadingServerTLS, TLSClientConfig, TLSServerConfig
from gateway.configgrpc import MIB, GRPCClientConfig, GRPCServerConfig
from gateway.confighttp import CORSConfig, HTTPClient, HTTPClientConfig, HTTPServerConfig, server_middleware
from gateway.configtypes import Duration, decode, parse_duration, validate_tree
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
from gateway.helpers.parts import Part, PartSender, Split, offloaded
from gateway.helpers.processor import Processor
from gateway.helpers.protowire import any_value_to_python, field, timestamp, varint
from gateway.helpers.shared import SharedComponent, SharedComponents
from gateway.helpers.split import split
from gateway.helpers.trace_runs import Envelope, EnvelopeTable, assemble, split_request, stamp
from gateway.helpers.walog import SegmentLog, StorageUnavailable
from gateway.hookspecs import hookimpl
from gateway.host import Host, Status
from gateway.netaddr import format_addresses, listen_error, split_host_port
from gateway.wirebytes import attached, unchanged, wire_bytes

__all__ = [
    "MIB",
    "USER_AGENT",
    "AdminServer",
    "AdmissionGate",
    "AuthConfig",
    "Backoff",
    "Batch",
    "Budget",
    "CORSConfig",
    "ClientInfo",
    "ComponentID",
    "ComponentSettings",
    "ConfigError",
    "ConsumeError",
    "DebugServer",
    "Duration",
    "Envelope",
    "EnvelopeTable",
    "ExporterChannel",
    "ExporterHelper",
    "Factory",
    "FlushingConnector",
    "GRPCClientConfig",
    "GRPCServerConfig",
    "HTTPClient",
    "HTTPClientConfig",
    "HTTPServerConfig",
    "Host",
    "Kind",
    "OtelgwError",
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
    "StorageUnavailable",
    "TLSClientConfig",
    "TLSServerConfig",
    "TooLargeError",
    "any_value_to_python",
    "assemble",
    "attached",
    "client_auth",
    "consume",
    "count_items",
    "decode",
    "field",
    "format_addresses",
    "grpc_error",
    "hookimpl",
    "http_error",
    "json_response",
    "listen_error",
    "offloaded",
    "parse_duration",
    "parse_retry_after",
    "permanent_http_error",
    "register_admission_gate",
    "server_auth",
    "server_middleware",
    "shared_ports",
    "split",
    "split_host_port",
    "split_request",
    "stamp",
    "status_for",
    "timestamp",
    "unchanged",
    "unregister_admission_gate",
    "validate_tree",
    "varint",
    "wire_bytes",
]
