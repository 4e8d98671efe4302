"""The option coverage table: for each shipped component, the Collector's documented options and which of them
otelgw accepts, read from the components' config classes (not written by hand).

    python -m bench.compat            # prints the table
    python -m bench.compat --write    # writes docs/collector-compatibility.md

tests/test_collector_compatibility.py fails when the committed document differs from what this prints, so the
figures follow the code. The option lists are the Collector's (core and contrib) component documentation, as
``::``-separated paths; blocks shared by many components (confighttp, configgrpc, exporterhelper) are listed once.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any

from gateway import Kind
from gateway._host.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "collector-compatibility.md"

HTTP_SERVER = ["endpoint", "tls", "cors::allowed_origins", "cors::allowed_headers", "cors::max_age", "auth",
               "max_request_body_size", "include_metadata", "response_headers", "compression_algorithms",
               "read_timeout", "read_header_timeout", "write_timeout", "idle_timeout"]
GRPC_SERVER = ["endpoint", "transport", "tls", "max_recv_msg_size_mib", "max_concurrent_streams",
               "read_buffer_size", "write_buffer_size", "keepalive::server_parameters::max_connection_idle",
               "keepalive::server_parameters::max_connection_age",
               "keepalive::server_parameters::max_connection_age_grace", "keepalive::server_parameters::time",
               "keepalive::server_parameters::timeout", "keepalive::enforcement_policy::min_time",
               "keepalive::enforcement_policy::permit_without_stream", "auth", "include_metadata"]
HTTP_CLIENT = ["endpoint", "proxy_url", "tls", "read_buffer_size", "write_buffer_size", "timeout", "headers",
               "auth", "compression", "compression_params", "max_idle_conns", "max_idle_conns_per_host",
               "max_conns_per_host", "idle_conn_timeout", "disable_keep_alives", "http2_read_idle_timeout",
               "http2_ping_timeout", "cookies"]
GRPC_CLIENT = ["endpoint", "compression", "tls", "keepalive::time", "keepalive::timeout",
               "keepalive::permit_without_stream", "read_buffer_size", "write_buffer_size", "wait_for_ready",
               "headers", "balancer_name", "authority", "auth"]
EXPORTER_HELPER = ["timeout", "sending_queue::enabled", "sending_queue::num_consumers", "sending_queue::queue_size",
                   "sending_queue::sizer", "sending_queue::block_on_overflow", "sending_queue::wait_for_result",
                   "sending_queue::storage", "sending_queue::batch::flush_timeout", "sending_queue::batch::min_size",
                   "sending_queue::batch::max_size", "sending_queue::batch::sizer", "retry_on_failure::enabled",
                   "retry_on_failure::initial_interval", "retry_on_failure::randomization_factor",
                   "retry_on_failure::multiplier", "retry_on_failure::max_interval",
                   "retry_on_failure::max_elapsed_time"]


def _under(prefix: str, keys: list[str]) -> list[str]:
    return [f"{prefix}::{key}" for key in keys]


#: (kind, Collector type) → its documented options.
COLLECTOR: dict[tuple[Kind, str], list[str]] = {
    (Kind.RECEIVER, "otlp"): [*_under("protocols::grpc", GRPC_SERVER), *_under("protocols::http", HTTP_SERVER),
                              "protocols::http::traces_url_path", "protocols::http::metrics_url_path",
                              "protocols::http::logs_url_path"],
    (Kind.RECEIVER, "filelog"): [
        "include", "exclude", "exclude_older_than", "start_at", "poll_interval", "max_concurrent_files",
        "max_batches", "fingerprint_size", "max_log_size", "encoding", "multiline::line_start_pattern",
        "multiline::line_end_pattern", "multiline::omit_pattern", "force_flush_period", "include_file_name",
        "include_file_path", "include_file_name_resolved", "include_file_path_resolved",
        "include_file_owner_name", "include_file_owner_group_name", "include_file_record_number",
        "preserve_leading_whitespaces", "preserve_trailing_whitespaces", "operators", "storage",
        "retry_on_failure::enabled", "retry_on_failure::initial_interval", "retry_on_failure::max_interval",
        "retry_on_failure::max_elapsed_time", "delete_after_read", "compression", "acquire_fs_lock",
        "polls_to_archive", "ordering_criteria", "header", "attributes", "resource"],
    (Kind.RECEIVER, "prometheus"): ["config::scrape_configs", "config::global", "trim_metric_suffixes",
                                    "use_start_time_metric", "start_time_metric_regex", "target_allocator",
                                    "api_server", "report_extra_scrape_metrics"],
    (Kind.RECEIVER, "hostmetrics"): ["collection_interval", "initial_delay", "root_path", "scrapers::cpu",
                                     "scrapers::disk", "scrapers::load", "scrapers::filesystem", "scrapers::memory",
                                     "scrapers::network", "scrapers::paging", "scrapers::processes",
                                     "scrapers::process", "scrapers::system"],
    (Kind.PROCESSOR, "batch"): ["timeout", "send_batch_size", "send_batch_max_size", "metadata_keys",
                                "metadata_cardinality_limit"],
    (Kind.PROCESSOR, "memory_limiter"): ["check_interval", "limit_mib", "spike_limit_mib", "limit_percentage",
                                         "spike_limit_percentage"],
    (Kind.PROCESSOR, "resource"): _under("attributes", ["key", "value", "action", "from_attribute",
                                                        "from_context", "pattern", "converted_type"]),
    (Kind.PROCESSOR, "attributes"): [
        *_under("actions", ["key", "value", "action", "from_attribute", "from_context", "pattern",
                            "converted_type"]),
        *(f"{side}::{key}" for side in ("include", "exclude")
          for key in ("match_type", "services", "span_names", "span_kinds", "attributes", "resources",
                      "libraries", "log_bodies", "log_severity_texts", "log_severity_number", "metric_names",
                      "regexp"))],
    (Kind.PROCESSOR, "filter"): ["error_mode", "traces::span", "traces::spanevent", "metrics::metric",
                                 "metrics::datapoint", "logs::log_record", "spans", "logs", "metrics"],
    (Kind.PROCESSOR, "transform"): ["error_mode", "trace_statements", "metric_statements", "log_statements",
                                    "flatten_data"],
    (Kind.PROCESSOR, "tail_sampling"): ["decision_wait", "num_traces", "expected_new_traces_per_sec", "policies",
                                        "decision_cache::sampled_cache_size",
                                        "decision_cache::non_sampled_cache_size", "sample_on_first_match"],
    (Kind.PROCESSOR, "redaction"): ["allow_all_keys", "allowed_keys", "ignored_keys", "blocked_key_patterns",
                                    "blocked_values", "allowed_values", "hash_function", "summary",
                                    "url_sanitization"],
    (Kind.PROCESSOR, "resourcedetection"): ["detectors", "override", "timeout", "system::hostname_sources",
                                            "system::resource_attributes", "env", "docker", "ec2", "gcp", "azure",
                                            "k8snode", "consul", "openshift"],
    (Kind.EXPORTER, "otlp"): [*GRPC_CLIENT, *EXPORTER_HELPER],
    (Kind.EXPORTER, "otlphttp"): [*HTTP_CLIENT, "traces_endpoint", "metrics_endpoint", "logs_endpoint",
                                  "encoding", *(k for k in EXPORTER_HELPER if k != "timeout")],
    (Kind.EXPORTER, "debug"): ["verbosity", "sampling_initial", "sampling_thereafter", "use_internal_logger"],
    (Kind.EXPORTER, "file"): ["path", "append", "rotation::max_megabytes", "rotation::max_days",
                              "rotation::max_backups", "rotation::localtime", "format", "encoding", "compression",
                              "flush_interval", "group_by::enabled", "group_by::resource_attribute",
                              "group_by::max_open_files"],
    (Kind.EXPORTER, "prometheus"): [*HTTP_SERVER, "const_labels", "namespace", "send_timestamps",
                                    "metric_expiration", "resource_to_telemetry_conversion::enabled",
                                    "enable_open_metrics", "add_metric_suffixes", "translation_strategy"],
    (Kind.EXPORTER, "prometheusremotewrite"): [
        *HTTP_CLIENT, "namespace", "external_labels", "add_metric_suffixes",
        "resource_to_telemetry_conversion::enabled", "target_info::enabled", "remote_write_queue::enabled",
        "remote_write_queue::queue_size", "remote_write_queue::num_consumers", "retry_on_failure::enabled",
        "retry_on_failure::initial_interval", "retry_on_failure::max_interval", "retry_on_failure::max_elapsed_time",
        "max_batch_size_bytes", "send_metadata", "wal::directory", "wal::buffer_size", "wal::truncate_frequency",
        "export_created_metric::enabled", "protobuf_message"],
    (Kind.EXPORTER, "loki"): [*HTTP_CLIENT, *(k for k in EXPORTER_HELPER if k != "timeout"),
                              "default_labels_enabled"],
    (Kind.EXPORTER, "loadbalancing"): [
        "routing_key", "routing_attributes", *_under("protocol::otlp", [*GRPC_CLIENT, *EXPORTER_HELPER]),
        "resolver::static::hostnames", "resolver::dns::hostname", "resolver::dns::port", "resolver::dns::interval",
        "resolver::dns::timeout", "resolver::k8s::service", "resolver::k8s::ports", "resolver::k8s::timeout",
        "resolver::k8s::return_hostnames", "resolver::aws_cloud_map::namespace",
        "resolver::aws_cloud_map::service_name", *EXPORTER_HELPER],
    (Kind.CONNECTOR, "forward"): [],
    (Kind.CONNECTOR, "spanmetrics"): [
        "histogram::disable", "histogram::unit", "histogram::explicit::buckets", "histogram::exponential::max_size",
        "dimensions", "exclude_dimensions", "dimensions_cache_size", "aggregation_temporality",
        "metrics_flush_interval", "metrics_expiration", "events::enabled", "events::dimensions",
        "resource_metrics_key_attributes", "namespace", "exemplars::enabled", "exemplars::max_per_data_point",
        "aggregation_cardinality_limit", "include_instrumentation_scope", "add_resource_attributes"],
    (Kind.EXTENSION, "health_check"): [*HTTP_SERVER, "path", "response_body",
                                       "check_collector_pipeline::enabled", "check_collector_pipeline::interval",
                                       "check_collector_pipeline::exporter_failure_threshold"],
    (Kind.EXTENSION, "pprof"): ["endpoint", "block_profile_fraction", "mutex_profile_fraction", "save_to_file"],
    (Kind.EXTENSION, "zpages"): [*HTTP_SERVER, "expvar::enabled"],
    (Kind.EXTENSION, "file_storage"): ["directory", "timeout", "create_directory", "directory_permissions",
                                       "fsync", "compaction::on_start", "compaction::on_rebound",
                                       "compaction::directory", "compaction::max_transaction_size",
                                       "compaction::rebound_needed_threshold_mib",
                                       "compaction::rebound_trigger_threshold_mib", "compaction::check_interval",
                                       "compaction::cleanup_on_start"],
    (Kind.EXTENSION, "basicauth"): ["htpasswd::file", "htpasswd::inline", "client_auth::username",
                                    "client_auth::password"],
    (Kind.EXTENSION, "bearertokenauth"): ["scheme", "token", "tokens", "filename", "header"],
    (Kind.EXTENSION, "headers_setter"): _under("headers", ["key", "action", "value", "from_context",
                                                           "default_value"]),
}

#: Config fields typed loosely (a mapping decoded later) → the dataclass that decodes them.
_DECODED_LATER: dict[tuple[str, str], str] = {
    ("load_balancing", "protocol::otlp"): "plugins.exporters.otlp_grpc.config:Config",
    ("otlp", "protocols::grpc"): "plugins.receivers.otlp.config:GrpcConfig",
    ("otlp", "protocols::http"): "plugins.receivers.otlp.config:HttpConfig",
}


def _load(ref: str) -> type:
    module, _, name = ref.partition(":")
    __import__(module)
    return getattr(sys.modules[module], name)  # type: ignore[no-any-return]


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass a field's type holds: itself, an Optional one, or a list's element."""
    if dataclasses.is_dataclass(tp):
        return tp  # type: ignore[return-value]
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType, list):
        for arg in args:
            found = _dataclass_of(arg)
            if found is not None:
                return found
    return None


def _open_ended(tp: Any) -> bool:
    """A mapping or Any: any key below it is taken (scrape configs, detector blocks, OTTL statements...)."""
    origin = typing.get_origin(tp)
    if tp is Any or origin is dict:
        return True
    return origin in (typing.Union, types.UnionType) and any(_open_ended(a) for a in typing.get_args(tp))


def _accepts(config_type: type, path: str) -> bool:
    current: type | None = config_type
    for key in path.split("::"):
        if current is None:
            return False
        hints = typing.get_type_hints(current)
        fields = {f.name.rstrip("_"): f.name for f in dataclasses.fields(current)}  # global_ is "global"
        if key not in fields:
            return False
        tp = hints[fields[key]]
        current = _dataclass_of(tp)
        if current is None and _open_ended(tp):
            return True
    return True


def accepts(component: str, config_type: type, path: str) -> bool:
    """Whether ``config_type`` has the option at ``path`` (``a::b::c``)."""
    for (owner, prefix), ref in _DECODED_LATER.items():
        if owner == component and path.startswith(prefix + "::"):
            return _accepts(_load(ref), path[len(prefix) + 2:])
    return _accepts(config_type, path)


def rows() -> list[tuple[str, str, int, int, list[str]]]:
    """(kind, otelgw type, documented, accepted, missing) per component in COLLECTOR."""
    registry = load_registry()
    out = []
    for (kind, collector_type), options in COLLECTOR.items():
        factory = registry.get(kind, collector_type)
        config_type = type(factory.create_default_config())
        missing = [option for option in options if not accepts(factory.type, config_type, option)]
        out.append((kind.value, factory.type, len(options), len(options) - len(missing), missing))
    return out


def render() -> str:
    table = rows()
    documented = sum(r[2] for r in table)
    accepted = sum(r[3] for r in table)
    lines = [
        "# Collector compatibility: options per component",
        "",
        "Generated by `python -m bench.compat --write` from the components' config classes; a test fails when it",
        "is out of date. For each shipped component that the OpenTelemetry Collector (core or contrib) also has:",
        "the options its documentation lists (nested options as `a::b`, the shared HTTP/gRPC server and client",
        "blocks and the exporter helper counted in every component that embeds them), how many of them otelgw",
        "accepts, and the missing ones by name. An option not accepted is an unknown-key error naming the valid",
        "keys, never silently ignored. otelgw-only components (`kpi`, `alerts`, `jaeger`) are not listed.",
        "",
        f"**All components: {accepted} of {documented} documented options accepted "
        f"({100 * accepted / documented:.0f}%).**",
        "",
        "| kind | component | documented | accepted | missing |",
        "|---|---|---|---|---|",
    ]
    for kind, name, total, ok, missing in table:
        shown = ", ".join(f"`{m}`" for m in missing) or "none"
        lines.append(f"| {kind} | `{name}` | {total} | {ok} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    text = render()
    if "--write" in argv:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main(sys.argv[1:])
