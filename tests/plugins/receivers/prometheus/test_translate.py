"""Translation of one scrape into OTLP, on expositions written here: types, start times, resources, staleness."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from plugins.receivers.prometheus.relabel import RelabelConfig
from plugins.receivers.prometheus.translate import Limits, ScrapeError, SeriesState, translate

TARGET = {"job": "app", "instance": "127.0.0.1:8000", "team": "checkout"}
T0 = 1_800_000_000_000_000_000

OPENMETRICS = """\
# TYPE http_requests counter
# HELP http_requests Requests served.
http_requests_total{code="200"} 7.0
http_requests_created{code="200"} 1700000000.5
http_requests_total{code="500"} 2.0
# TYPE temperature_celsius gauge
# UNIT temperature_celsius celsius
temperature_celsius 21.5
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1.0
latency_seconds_bucket{le="1.0"} 3.0
latency_seconds_bucket{le="+Inf"} 5.0
latency_seconds_count 5.0
latency_seconds_sum 13.25
# TYPE size_bytes summary
size_bytes{quantile="0.5"} 3.0
size_bytes{quantile="0.99"} 5.0
size_bytes_count 2.0
size_bytes_sum 8.0
# TYPE target info
target_info{region="eu-west-1",version="1.2"} 1
# EOF
"""


def run(text: str, state: SeriesState | None = None, content_type: str = "application/openmetrics-text",
        at: int = T0, **overrides: Any) -> Any:
    options: dict[str, Any] = dict(target_labels=TARGET, scheme="http", honor_labels=False, honor_timestamps=True,
                                   metric_relabel=[], limits=Limits())
    options.update(overrides)
    return translate(text, content_type, state=state if state is not None else SeriesState(), scrape_ns=at,
                     **options)


def metrics_by_name(request: Any) -> dict[str, Any]:
    return {m.name: m for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


def test_types_values_and_resource() -> None:
    result = run(OPENMETRICS)
    assert (result.samples_scraped, result.samples_post_relabel, result.series_added) == (14, 14, 5)
    [rm] = result.request.resource_metrics
    assert attrs(rm.resource.attributes) == {
        "service.name": "app", "service.instance.id": "127.0.0.1:8000", "server.address": "127.0.0.1",
        "server.port": "8000", "url.scheme": "http", "region": "eu-west-1", "version": "1.2",
        "team": "checkout"}  # target_info carries the target labels too, as every sample does
    metrics = metrics_by_name(result.request)
    assert "target_info" not in metrics
    requests = metrics["http_requests_total"]
    assert requests.description == "Requests served."
    assert requests.sum.is_monotonic and requests.sum.aggregation_temporality == pb.AGGREGATION_TEMPORALITY_CUMULATIVE
    points = {attrs(p.attributes)["code"]: p for p in requests.sum.data_points}
    assert points["200"].as_double == 7.0 and points["200"].start_time_unix_nano == 1_700_000_000_500_000_000
    assert points["500"].start_time_unix_nano == T0  # no _created: first observation
    assert attrs(points["200"].attributes) == {"code": "200", "team": "checkout"}
    temperature = metrics["temperature_celsius"]
    assert temperature.unit == "celsius" and temperature.gauge.data_points[0].as_double == 21.5
    [hist] = metrics["latency_seconds"].histogram.data_points
    assert list(hist.explicit_bounds) == [0.1, 1.0] and list(hist.bucket_counts) == [1, 2, 2]
    assert (hist.count, hist.sum) == (5, 13.25)
    [summary] = metrics["size_bytes"].summary.data_points
    assert [(q.quantile, q.value) for q in summary.quantile_values] == [(0.5, 3.0), (0.99, 5.0)]
    assert (summary.count, summary.sum) == (2, 8.0)


def test_text_format_created_gauges_give_start_times() -> None:
    text = ('# TYPE reqs_total counter\nreqs_total 3\n# TYPE reqs_created gauge\nreqs_created 1700000000\n'
            '# TYPE lat histogram\nlat_bucket{le="+Inf"} 2\nlat_count 2\nlat_sum 1\n'
            '# TYPE lat_created gauge\nlat_created 1700000001\n')
    metrics = metrics_by_name(run(text, content_type="text/plain; version=0.0.4").request)
    assert set(metrics) == {"reqs_total", "lat"}
    assert metrics["reqs_total"].sum.data_points[0].start_time_unix_nano == 1_700_000_000 * 10**9
    assert metrics["lat"].histogram.data_points[0].start_time_unix_nano == 1_700_000_001 * 10**9


def test_start_time_kept_then_reset_and_staleness() -> None:
    state = SeriesState()
    first = "# TYPE c_total counter\nc_total 5\n# TYPE g gauge\ng 1\n"
    run(first, state, "text/plain", at=T0)
    second = metrics_by_name(run("# TYPE c_total counter\nc_total 9\n", state, "text/plain", at=T0 + 10).request)
    assert second["c_total"].sum.data_points[0].start_time_unix_nano == T0  # same series: start kept
    [stale] = second["g"].gauge.data_points  # g disappeared: one NoRecordedValue point
    assert stale.flags == pb.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK and stale.time_unix_nano == T0 + 10
    third = metrics_by_name(run("# TYPE c_total counter\nc_total 1\n", state, "text/plain", at=T0 + 20).request)
    assert third["c_total"].sum.data_points[0].start_time_unix_nano == T0 + 20  # went down: a reset


def test_honor_labels_and_metric_relabeling() -> None:
    text = '# TYPE x gauge\nx{job="other",keep="1"} 1\nx{keep="0"} 2\n# TYPE y gauge\ny 3\n'
    drop_y = [RelabelConfig(source_labels=["__name__"], regex="y", action="drop")]
    result = run(text, content_type="text/plain", metric_relabel=drop_y)
    assert (result.samples_scraped, result.samples_post_relabel) == (3, 2)
    points = metrics_by_name(result.request)["x"].gauge.data_points
    assert [attrs(p.attributes).get("exported_job") for p in points] == ["other", None]
    honored = run(text, content_type="text/plain", honor_labels=True).request
    jobs = {attrs(rm.resource.attributes)["service.name"] for rm in honored.resource_metrics}
    assert jobs == {"other", "app"}  # the exposed job wins and makes its own resource


def test_limits_and_garbage_raise_with_a_cause() -> None:
    many = "".join(f"m{i} {i}\n" for i in range(50))
    for text, limits, cause in [
        (many, Limits(sample_limit=10), "sample_limit"),
        ('x{a="1",b="2",c="3"} 1\n', Limits(label_limit=3), "label_limit"),  # 3 + team from the target
        ('x{a="' + "v" * 100 + '"} 1\n', Limits(label_value_length_limit=50), "label_value_length_limit"),
        ("\x00\x01garbage\xff\n", Limits(), "parse_error"),
        ("<html><body>Not Found</body></html>", Limits(), "parse_error"),
    ]:
        state = SeriesState()
        try:
            run(text, state, "text/plain", limits=limits)
        except ScrapeError as exc:
            assert exc.cause == cause, (text[:20], exc)
        else:
            raise AssertionError(f"{text[:20]!r} was accepted")
        assert state.previous == {}  # a failed scrape leaves the target's state alone


def test_sample_lines_are_counted_exactly_across_chunk_boundaries() -> None:
    """The body reader's count (sample_limit before parsing) equals the lines that are samples, however split."""
    import random

    from plugins.receivers.prometheus.scrape import _SampleLines

    rng = random.Random(7)
    for _ in range(2000):
        lines = [rng.choice(["", "# HELP m doc", "# TYPE m gauge", f"m{{a=\"{rng.random()}\"}} 1"])
                 for _ in range(rng.randint(0, 30))]
        body = ("\n".join(lines) + rng.choice(["\n", ""])).encode()
        expected = sum(1 for line in body.split(b"\n")[:-1] if line and not line.startswith(b"#"))
        counter, position, count = _SampleLines(), 0, 0
        while position < len(body):
            step = rng.randint(1, 12)
            count = counter.add(body[position:position + step])
            position += step
        assert count == expected, body
