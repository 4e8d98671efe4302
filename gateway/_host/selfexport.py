"""The gateway's own metrics pushed over OTLP: ``service::telemetry::metrics::readers`` with a periodic reader.

The metrics live in a prometheus-client registry (what the pull reader serves); every ``interval`` a snapshot is
turned into one ``ExportMetricsServiceRequest`` (counters as cumulative monotonic sums, gauges as gauges,
histograms as explicit-bucket histograms) under the telemetry ``resource`` and sent over OTLP/HTTP or gRPC. A
failed export is logged and the next interval sends the then current values: cumulative data loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from typing import Any

import aiohttp
import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client import CollectorRegistry

from gateway import otlpjson
from gateway._host.telemetryconfig import OtlpPushConfig, PeriodicReaderConfig

__all__ = ["PeriodicPush", "to_otlp"]

log = logging.getLogger("otelgw.service")
_CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def _attributes(labels: dict[str, str]) -> list[KeyValue]:
    out = []
    for key, value in labels.items():
        item = KeyValue(key=key)
        item.value.string_value = str(value)
        out.append(item)
    return out


def to_otlp(registry: CollectorRegistry, resource: dict[str, str],
            start_ns: int) -> metrics_pb.ExportMetricsServiceRequest:
    """A snapshot of ``registry`` as one OTLP request."""
    now = time.time_ns()
    request = metrics_pb.ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    rm.resource.attributes.extend(_attributes(resource))
    scope = rm.scope_metrics.add()
    scope.scope.name = "otelgw"
    for family in registry.collect():
        metric = scope.metrics.add(name=family.name, description=family.documentation, unit=family.unit or "")
        if family.type == "counter":
            metric.sum.aggregation_temporality = _CUMULATIVE
            metric.sum.is_monotonic = True
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    metric.sum.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now,
                                               as_double=sample.value, attributes=_attributes(sample.labels))
        elif family.type == "histogram":
            _histogram(metric, family.samples, start_ns, now)
        else:  # gauge, info, untyped: the value as it is now
            for sample in family.samples:
                metric.gauge.data_points.add(time_unix_nano=now, as_double=sample.value,
                                             attributes=_attributes(sample.labels))
    return request


def _histogram(metric: metrics_pb2.Metric, samples: list[Any], start_ns: int, now: int) -> None:
    metric.histogram.aggregation_temporality = _CUMULATIVE
    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        entry = series.setdefault(tuple(sorted(labels.items())), {"labels": labels, "buckets": []})
        if sample.name.endswith("_bucket"):
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            entry["count"] = int(sample.value)
        elif sample.name.endswith("_sum"):
            entry["sum"] = sample.value
    for entry in series.values():
        bounds = sorted(entry["buckets"])
        cumulative = [count for _, count in bounds]
        point = metric.histogram.data_points.add(start_time_unix_nano=start_ns, time_unix_nano=now,
                                                 count=entry.get("count", 0), sum=entry.get("sum", 0.0),
                                                 attributes=_attributes(entry["labels"]))
        point.explicit_bounds.extend(b for b, _ in bounds if b != float("inf"))
        # Prometheus buckets are cumulative; OTLP's are per bucket.
        point.bucket_counts.extend(int(c - p) for c, p in zip(cumulative, [0.0, *cumulative[:-1]], strict=True))


class PeriodicPush:
    """One periodic reader: a task that exports a snapshot every ``interval`` milliseconds until stopped."""

    def __init__(self, config: PeriodicReaderConfig, registry: CollectorRegistry, resource: dict[str, str]) -> None:
        assert config.exporter.otlp is not None
        self.config = config
        self.otlp: OtlpPushConfig = config.exporter.otlp
        self.registry = registry
        self.resource = resource
        self.start_ns = time.time_ns()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._channel: grpc.aio.Channel | None = None
        #: Exports that succeeded, for the status of the reader in tests and logs.
        self.exported = 0

    async def start(self) -> None:
        if self.otlp.protocol == "grpc":
            target = self.otlp.endpoint.split("://", 1)[-1].rstrip("/")
            secure = self.otlp.endpoint.startswith("https://") or not (self.otlp.insecure or
                                                                        self.otlp.endpoint.startswith("http://"))
            self._channel = (grpc.aio.secure_channel(target, grpc.ssl_channel_credentials()) if secure
                             else grpc.aio.insecure_channel(target))
        else:
            self._session = aiohttp.ClientSession()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="self-metrics push")

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):  # a last snapshot, so short runs are seen too
            await asyncio.wait_for(self.export(), self.config.timeout / 1000)
        if self._session is not None:
            await self._session.close()
        if self._channel is not None:
            await self._channel.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval / 1000)
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that arrives as the
                # export completes, and this loop would then outlive shutdown's cancel.
                async with asyncio.timeout(self.config.timeout / 1000):
                    await self.export()
            except Exception as exc:  # the next interval sends the cumulative values again
                log.warning("pushing the gateway's own metrics failed: %s", exc,
                            extra={"endpoint": self.otlp.endpoint})

    async def export(self) -> None:
        request = await asyncio.to_thread(to_otlp, self.registry, self.resource, self.start_ns)
        headers = self.otlp.header_map()
        timeout = self.otlp.timeout / 1000
        if self._channel is not None:
            stub = metrics_grpc.MetricsServiceStub(self._channel)
            compression = grpc.Compression.Gzip if self.otlp.compression == "gzip" else None
            await stub.Export(request, timeout=timeout, metadata=tuple(headers.items()), compression=compression)
        else:
            assert self._session is not None
            if self.otlp.protocol == "http/json":
                body = otlpjson.encode(request)
                headers["Content-Type"] = "application/json"
            else:
                body = request.SerializeToString()
                headers["Content-Type"] = "application/x-protobuf"
            if self.otlp.compression == "gzip":
                body = gzip.compress(body)
                headers["Content-Encoding"] = "gzip"
            url = self.otlp.endpoint
            if "/v1/" not in url:
                url = url.rstrip("/") + "/v1/metrics"
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status >= 300:
                    raise RuntimeError(f"HTTP {response.status} from {url}")
        self.exported += 1
