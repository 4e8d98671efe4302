# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TracesItems(_message.Message):
    __slots__ = ("resource_spans",)
    RESOURCE_SPANS_FIELD_NUMBER: _ClassVar[int]
    resource_spans: _containers.RepeatedCompositeFieldContainer[ResourceSpansItems]
    def __init__(self, resource_spans: _Optional[_Iterable[_Union[ResourceSpansItems, _Mapping]]] = ...) -> None: ...

class ResourceSpansItems(_message.Message):
    __slots__ = ("resource", "scope_spans", "schema_url")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_SPANS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    resource: bytes
    scope_spans: _containers.RepeatedCompositeFieldContainer[ScopeSpansItems]
    schema_url: bytes
    def __init__(self, resource: _Optional[bytes] = ..., scope_spans: _Optional[_Iterable[_Union[ScopeSpansItems, _Mapping]]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class ScopeSpansItems(_message.Message):
    __slots__ = ("scope", "spans", "schema_url")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    scope: bytes
    spans: _containers.RepeatedScalarFieldContainer[bytes]
    schema_url: bytes
    def __init__(self, scope: _Optional[bytes] = ..., spans: _Optional[_Iterable[bytes]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class LogsItems(_message.Message):
    __slots__ = ("resource_logs",)
    RESOURCE_LOGS_FIELD_NUMBER: _ClassVar[int]
    resource_logs: _containers.RepeatedCompositeFieldContainer[ResourceLogsItems]
    def __init__(self, resource_logs: _Optional[_Iterable[_Union[ResourceLogsItems, _Mapping]]] = ...) -> None: ...

class ResourceLogsItems(_message.Message):
    __slots__ = ("resource", "scope_logs", "schema_url")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_LOGS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    resource: bytes
    scope_logs: _containers.RepeatedCompositeFieldContainer[ScopeLogsItems]
    schema_url: bytes
    def __init__(self, resource: _Optional[bytes] = ..., scope_logs: _Optional[_Iterable[_Union[ScopeLogsItems, _Mapping]]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class ScopeLogsItems(_message.Message):
    __slots__ = ("scope", "log_records", "schema_url")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    LOG_RECORDS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    scope: bytes
    log_records: _containers.RepeatedScalarFieldContainer[bytes]
    schema_url: bytes
    def __init__(self, scope: _Optional[bytes] = ..., log_records: _Optional[_Iterable[bytes]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class MetricsItems(_message.Message):
    __slots__ = ("resource_metrics",)
    RESOURCE_METRICS_FIELD_NUMBER: _ClassVar[int]
    resource_metrics: _containers.RepeatedCompositeFieldContainer[ResourceMetricsItems]
    def __init__(self, resource_metrics: _Optional[_Iterable[_Union[ResourceMetricsItems, _Mapping]]] = ...) -> None: ...

class ResourceMetricsItems(_message.Message):
    __slots__ = ("resource", "scope_metrics", "schema_url")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_METRICS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    resource: bytes
    scope_metrics: _containers.RepeatedCompositeFieldContainer[ScopeMetricsItems]
    schema_url: bytes
    def __init__(self, resource: _Optional[bytes] = ..., scope_metrics: _Optional[_Iterable[_Union[ScopeMetricsItems, _Mapping]]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class ScopeMetricsItems(_message.Message):
    __slots__ = ("scope", "metrics", "schema_url")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_URL_FIELD_NUMBER: _ClassVar[int]
    scope: bytes
    metrics: _containers.RepeatedCompositeFieldContainer[MetricItems]
    schema_url: bytes
    def __init__(self, scope: _Optional[bytes] = ..., metrics: _Optional[_Iterable[_Union[MetricItems, _Mapping]]] = ..., schema_url: _Optional[bytes] = ...) -> None: ...

class MetricItems(_message.Message):
    __slots__ = ("name", "description", "unit", "gauge", "sum", "histogram", "exponential_histogram", "summary", "metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    GAUGE_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    EXPONENTIAL_HISTOGRAM_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    name: bytes
    description: bytes
    unit: bytes
    gauge: DataPoints
    sum: DataPoints
    histogram: DataPoints
    exponential_histogram: DataPoints
    summary: DataPoints
    metadata: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, name: _Optional[bytes] = ..., description: _Optional[bytes] = ..., unit: _Optional[bytes] = ..., gauge: _Optional[_Union[DataPoints, _Mapping]] = ..., sum: _Optional[_Union[DataPoints, _Mapping]] = ..., histogram: _Optional[_Union[DataPoints, _Mapping]] = ..., exponential_histogram: _Optional[_Union[DataPoints, _Mapping]] = ..., summary: _Optional[_Union[DataPoints, _Mapping]] = ..., metadata: _Optional[_Iterable[bytes]] = ...) -> None: ...

class DataPoints(_message.Message):
    __slots__ = ("data_points",)
    DATA_POINTS_FIELD_NUMBER: _ClassVar[int]
    data_points: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, data_points: _Optional[_Iterable[bytes]] = ...) -> None: ...

class TracesEnvelopes(_message.Message):
    __slots__ = ("resource_spans",)
    RESOURCE_SPANS_FIELD_NUMBER: _ClassVar[int]
    resource_spans: _containers.RepeatedCompositeFieldContainer[ResourceSpansEnvelopes]
    def __init__(self, resource_spans: _Optional[_Iterable[_Union[ResourceSpansEnvelopes, _Mapping]]] = ...) -> None: ...

class ResourceSpansEnvelopes(_message.Message):
    __slots__ = ("resource", "scope_spans")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_SPANS_FIELD_NUMBER: _ClassVar[int]
    resource: _containers.RepeatedScalarFieldContainer[bytes]
    scope_spans: _containers.RepeatedCompositeFieldContainer[ScopeSpansEnvelopes]
    def __init__(self, resource: _Optional[_Iterable[bytes]] = ..., scope_spans: _Optional[_Iterable[_Union[ScopeSpansEnvelopes, _Mapping]]] = ...) -> None: ...

class ScopeSpansEnvelopes(_message.Message):
    __slots__ = ("scope", "spans")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    scope: _containers.RepeatedScalarFieldContainer[bytes]
    spans: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, scope: _Optional[_Iterable[bytes]] = ..., spans: _Optional[_Iterable[bytes]] = ...) -> None: ...
