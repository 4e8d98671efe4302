"""gateway.prometheus: OTLP → Prometheus as docs/protocols.md §5 states it, shared by both exporters."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from gateway.prometheus import (
    STALE_NAN,
    MetricType,
    TranslateOptions,
    Translator,
    any_value_str,
    exponential_to_classic,
    format_float,
    label_name,
    metric_name,
)
from gateway.testing import any_value

T0 = 1_700_000_000_000_000_000
SEC = 1_000_000_000


def request(*metrics: pb.Metric, resource: dict[str, Any] | None = None, scope: str = "my.lib",
            scope_version: str = "") -> ExportMetricsServiceRequest:
    out = ExportMetricsServiceRequest()
    rm = out.resource_metrics.add()
    for key, value in ({"service.name": "checkout"} if resource is None else resource).items():
        rm.resource.attributes.add(key=key).value.CopyFrom(any_value(value))
    sm = rm.scope_metrics.add()
    sm.scope.name, sm.scope.version = scope, scope_version
    sm.metrics.extend(metrics)
    return out


def number_metric(kind: str, name: str = "requests", unit: str = "", value: float = 1, monotonic: bool = True,
                  temporality: int = 2, attributes: dict[str, Any] | None = None, start: int = T0,
                  time: int = T0 + SEC, flags: int = 0) -> pb.Metric:
    metric = pb.Metric(name=name, unit=unit, description="help text")
    container = getattr(metric, kind)
    if kind == "sum":
        container.is_monotonic, container.aggregation_temporality = monotonic, temporality
    point = container.data_points.add(start_time_unix_nano=start, time_unix_nano=time, flags=flags)
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    for key, v in (attributes or {}).items():
        point.attributes.add(key=key).value.CopyFrom(any_value(v))
    return metric


def histogram_metric(bounds: list[float], counts: list[int], total: float | None = 12.5, temporality: int = 2,
                     start: int = T0, time: int = T0 + SEC, name: str = "http.server.duration",
                     unit: str = "ms") -> pb.Metric:
    metric = pb.Metric(name=name, unit=unit)
    metric.histogram.aggregation_temporality = temporality
    point = metric.histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=time, count=sum(counts),
                                             explicit_bounds=bounds, bucket_counts=counts)
    if total is not None:
        point.sum = total
    return metric


def samples(points: list[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for point in points:
        for sample in point.samples():
            labels = dict(point.labels)
            if sample.extra:
                labels[sample.extra[0]] = sample.extra[1]
            out[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return out


def only(translator: Translator, *metrics: pb.Metric, **kwargs: Any) -> Any:
    points = [p for p in translator.translate(request(*metrics, **kwargs)) if p.name != "target_info"]
    assert len(points) == 1, points
    return points[0]


@pytest.mark.parametrize(("name", "unit", "kind", "expected"), [
    ("http.server.duration", "ms", {}, "http_server_duration_milliseconds"),
    ("system.network.io", "By", {"counter": True}, "system_network_io_bytes_total"),
    ("throughput", "By/s", {}, "throughput_bytes_per_second"),
    ("packets", "{packet}", {"counter": True}, "packets_total"),
    ("queue.length", "{item}/min", {}, "queue_length_per_min"),
    ("requests.total", "1", {"counter": True}, "requests_total"),
    ("total.requests", "", {"counter": True}, "requests_total"),
    ("cpu.utilization", "1", {"ratio_gauge": True}, "cpu_utilization_ratio"),
    ("cpu.utilization", "1", {}, "cpu_utilization"),
    ("memory_bytes", "By", {}, "memory_bytes"),
    ("latency.seconds", "s", {}, "latency_seconds"),
    ("temperature", "Cel", {}, "temperature_celsius"),
    ("2xx.responses", "", {"counter": True}, "_2xx_responses_total"),
    ("data-rate!", "MiBy/h", {}, "data_rate_mebibytes_per_hour"),
    ("odd", "furlongs/fortnight", {}, "odd_furlongs_per_fortnight"),
    ("x", "ms", {"namespace": "ns"}, "ns_x_milliseconds"),
    ("traces.span.metrics.calls", "", {"counter": True}, "traces_span_metrics_calls_total"),
])
def test_metric_names(name, unit, kind, expected):
    assert metric_name(name, unit, **kind) == expected


def test_metric_names_without_suffixes_are_only_cleaned():
    assert metric_name("http.server.duration", "ms", counter=True, add_suffixes=False) == "http_server_duration"
    assert metric_name("a.b:c", "", add_suffixes=False, namespace="ns") == "ns_a_b:c"


@pytest.mark.parametrize(("key", "expected"), [
    ("service.name", "service_name"), ("http.response.status_code", "http_response_status_code"),
    ("2fa", "key_2fa"), ("_private", "key_private"), ("__meta", "__meta"), ("a-b/c d", "a_b_c_d"),
    ("ünïcode", "key_n_code"),
])
def test_label_names(key, expected):
    assert label_name(key) == expected


def test_attribute_values_as_label_text():
    assert [any_value_str(any_value(v)) for v in ("s", True, False, 42, 1.5, 2.0, b"\x00\xff", [1, "a"], {"k": 1})] \
        == ["s", "true", "false", "42", "1.5", "2", "AP8=", '[1,"a"]', '{"k":1}']
    assert any_value_str(AnyValue()) == ""
    assert [format_float(v) for v in (0.005, 10.0, 1e-7, 2.5e21, math.inf, -math.inf, math.nan)] == [
        "0.005", "10", "0.0000001", "2500000000000000000000", "+Inf", "-Inf", "NaN"]


def test_counter_gauge_and_updown_sum():
    translator = Translator()
    counter = only(translator, number_metric("sum", "http.requests", value=7))
    assert (counter.name, counter.type, counter.value, counter.help) == ("http_requests_total", MetricType.COUNTER,
                                                                       7, "help text")
    gauge = only(translator, number_metric("gauge", "cpu.utilization", unit="1", value=0.5))
    assert (gauge.name, gauge.type) == ("cpu_utilization_ratio", MetricType.GAUGE)
    updown = only(translator, number_metric("sum", "queue.size", monotonic=False, value=-3))
    assert (updown.name, updown.type, updown.value) == ("queue_size", MetricType.GAUGE, -3)
    assert counter.timestamp_ms == (T0 + SEC) // 1_000_000


def test_labels_job_instance_scope_and_collisions():
    translator = Translator(TranslateOptions(extra_labels=(("env", "prod"), ("job", "never-used"))))
    point = only(translator, number_metric("sum", attributes={"http.method": "GET", "http_method": "POST",
                                                               "empty": "", "job": "overridden"}),
                 resource={"service.name": "api", "service.namespace": "shop", "service.instance.id": "i-1"},
                 scope_version="2.0")
    assert dict(point.labels) == {"http_method": "GET;POST", "job": "shop/api", "instance": "i-1", "env": "prod",
                                  "otel_scope_name": "my.lib", "otel_scope_version": "2.0"}
    assert list(point.labels) == sorted(point.labels)


def test_target_info_carries_the_other_resource_attributes():
    translator = Translator()
    points = translator.translate(request(number_metric("sum"), resource={
        "service.name": "api", "service.instance.id": "i-1", "host.name": "n1", "k8s.pod.name": "p"}))
    [info] = [p for p in points if p.name == "target_info"]
    assert info.type is MetricType.INFO and info.value == 1
    assert dict(info.labels) == {"job": "api", "instance": "i-1", "host_name": "n1", "k8s_pod_name": "p"}
    assert info.timestamp_ms == (T0 + SEC) // 1_000_000
    # none when only identifying attributes, or no job/instance at all, or when disabled
    for resource in ({"service.name": "api", "service.instance.id": "i"}, {"host.name": "n1"}):
        points = translator.translate(request(number_metric("sum"), resource=resource))
        assert all(p.name != "target_info" for p in points)
    disabled = Translator(TranslateOptions(target_info=False))
    assert all(p.name != "target_info" for p in disabled.translate(request(number_metric("sum"), resource={
        "service.name": "api", "host.name": "n1"})))


def test_resource_to_telemetry_conversion_copies_resource_attributes():
    translator = Translator(TranslateOptions(resource_to_telemetry_conversion=True, scope_labels=False))
    point = only(translator, number_metric("sum", attributes={"region": "point-wins"}),
                 resource={"service.name": "api", "region": "eu", "host.name": "n1"})
    assert dict(point.labels) == {"job": "api", "region": "point-wins", "host_name": "n1", "service_name": "api"}


def test_histogram_buckets_are_cumulative_with_le_and_inf():
    translator = Translator()
    point = only(translator, histogram_metric([0.005, 10, 100], [1, 2, 0, 3]))
    assert point.name == "http_server_duration_milliseconds" and point.unit == "milliseconds"
    got = {(name, dict(labels).get("le")): value for (name, labels), value in samples([point]).items()}
    assert got == {("http_server_duration_milliseconds_bucket", "0.005"): 1,
                   ("http_server_duration_milliseconds_bucket", "10"): 3,
                   ("http_server_duration_milliseconds_bucket", "100"): 3,
                   ("http_server_duration_milliseconds_bucket", "+Inf"): 6,
                   ("http_server_duration_milliseconds_count", None): 6,
                   ("http_server_duration_milliseconds_sum", None): 12.5}
    no_sum = only(translator, histogram_metric([1], [1, 1], total=None))
    assert not any(s.name.endswith("_sum") for s in no_sum.samples())


def test_histogram_exemplars_go_to_their_bucket_and_counters_keep_theirs():
    metric = histogram_metric([1, 10], [1, 1, 0])
    exemplar = metric.histogram.data_points[0].exemplars.add(as_double=5, time_unix_nano=T0, trace_id=b"\x01" * 16,
                                                             span_id=b"\x02" * 8)
    exemplar.filtered_attributes.add(key="user.id").value.string_value = "u" * 200  # over the 128-rune cap
    point = only(Translator(), metric)
    [(extra, example)] = [(s.extra, s.exemplar) for s in point.samples() if s.exemplar]
    assert extra == ("le", "10") and example.value == 5 and example.timestamp_ms == T0 // 1_000_000
    assert example.labels == {"trace_id": "01" * 16, "span_id": "02" * 8}
    counter = number_metric("sum", value=3)
    counter.sum.data_points[0].exemplars.add(as_int=1, span_id=b"\x03" * 8)
    assert [s.exemplar.labels for s in only(Translator(), counter).samples()] == [{"span_id": "03" * 8}]
    gauge = number_metric("gauge")
    gauge.gauge.data_points[0].exemplars.add(as_int=1)
    assert [s.exemplar for s in only(Translator(), gauge).samples()] == [None]


def test_summary_quantiles_sum_and_count():
    metric = pb.Metric(name="rpc.duration", unit="s")
    point = metric.summary.data_points.add(time_unix_nano=T0, count=10, sum=4.5)
    point.quantile_values.add(quantile=0.5, value=0.3)
    point.quantile_values.add(quantile=0.99, value=1.2)
    got = samples([only(Translator(), metric)])
    assert {(n, dict(labels).get("quantile")): v for (n, labels), v in got.items()} == {
        ("rpc_duration_seconds", "0.5"): 0.3, ("rpc_duration_seconds", "0.99"): 1.2,
        ("rpc_duration_seconds_sum", None): 4.5, ("rpc_duration_seconds_count", None): 10}


def test_delta_sums_accumulate_when_aligned_reset_on_gaps_and_drop_when_early():
    translator = Translator()

    def delta(value: int, start: int, end: int) -> float | None:
        points = [p for p in translator.translate(request(number_metric(
            "sum", value=value, temporality=1, start=start, time=end))) if p.name != "target_info"]
        return points[0].value if points else None

    assert delta(5, T0, T0 + SEC) == 5
    assert delta(3, T0 + SEC, T0 + 2 * SEC) == 8  # aligned: added
    assert delta(2, T0 + 5 * SEC, T0 + 6 * SEC) == 2  # a gap: the writer restarted
    assert delta(9, T0, T0 + SEC) is None  # starts before the stream does: dropped
    assert translator.stats.reasons == {"delta point out of order": 1}
    assert only(translator, number_metric("sum", value=1, temporality=1, start=T0 + 6 * SEC,
                                          time=T0 + 7 * SEC)).start_ns == T0 + 5 * SEC


def test_delta_non_monotonic_sums_are_dropped_and_delta_histograms_accumulate():
    translator = Translator()
    assert translator.translate(request(number_metric("sum", monotonic=False, temporality=1))) == []
    assert translator.stats.reasons == {"delta non-monotonic sum": 1}
    first = only(translator, histogram_metric([1], [1, 2], total=3, temporality=1, start=T0, time=T0 + SEC))
    second = only(translator, histogram_metric([1], [4, 0], total=2, temporality=1, start=T0 + SEC, time=T0 + 2 * SEC))
    assert (first.bucket_counts, second.bucket_counts, second.count, second.sum) == ((1, 2), (5, 2), 7, 5)
    rebucketed = only(translator, histogram_metric([1, 2], [1, 0, 0], total=1, temporality=1, start=T0 + 2 * SEC,
                                                   time=T0 + 3 * SEC))
    assert rebucketed.bucket_counts == (1, 0, 0)  # new bounds cannot be added to old ones: the stream restarts


def test_no_recorded_value_gives_the_stale_nan_for_every_series():
    point = only(Translator(), histogram_metric([1], [0, 0], total=None), )
    assert not point.stale
    metric = histogram_metric([1], [0, 0], total=None)
    metric.histogram.data_points[0].flags = pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    stale = only(Translator(), metric)
    values = [s.value for s in stale.samples()]
    assert len(values) == 3 and all(struct.pack("<d", v) == struct.pack("<Q", 0x7FF0000000000002) for v in values)
    assert math.isnan(STALE_NAN)


def test_exponential_histograms_become_classic_buckets():
    point = pb.ExponentialHistogramDataPoint(scale=0, zero_count=2, count=7, sum=20)
    point.positive.offset = 1
    point.positive.bucket_counts.extend([1, 3])  # (2, 4] and (4, 8]
    point.negative.offset = 0
    point.negative.bucket_counts.append(1)  # [-2, -1)
    bounds, counts = exponential_to_classic(point)
    assert bounds == (-1.0, 0.0, 4.0, 8.0) and counts == [1, 2, 1, 3, 0]
    metric = pb.Metric(name="latency", unit="ms")
    metric.exponential_histogram.aggregation_temporality = 2
    metric.exponential_histogram.data_points.append(point)
    translated = only(Translator(), metric)
    assert translated.type is MetricType.HISTOGRAM and translated.count == 7
    assert [s.value for s in translated.samples() if s.extra] == [1, 3, 4, 7, 7]


def test_untranslatable_data_is_counted_not_raised():
    translator = Translator()
    assert translator.translate(request(pb.Metric(name="empty"))) == []
    assert translator.translate(request(number_metric("sum", temporality=0))) == []
    assert translator.stats.dropped == 2
