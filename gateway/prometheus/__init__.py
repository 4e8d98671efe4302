"""OTLP → Prometheus translation shared by the ``prometheus`` and ``prometheus_remote_write`` exporters.

docs/protocols.md §5: metric names with unit and type suffixes, labels from attributes, ``job``/``instance``
from the resource, ``target_info``, exemplars, delta → cumulative. ``Translator.translate(request)`` gives
``Point``s; ``Point.samples()`` expands one into the samples Prometheus stores.
"""

from __future__ import annotations

from gateway.prometheus.cumulative import CumulativeState
from gateway.prometheus.model import STALE_NAN, Exemplar, Labels, MetricType, Point, Sample
from gateway.prometheus.naming import any_value_str, format_float, label_name, metric_name, unit_word
from gateway.prometheus.translate import TranslateOptions, Translator, exponential_to_classic, resource_job_instance

__all__ = [
    "STALE_NAN",
    "CumulativeState",
    "Exemplar",
    "Labels",
    "MetricType",
    "Point",
    "Sample",
    "TranslateOptions",
    "Translator",
    "any_value_str",
    "exponential_to_classic",
    "format_float",
    "label_name",
    "metric_name",
    "resource_job_instance",
    "unit_word",
]
