"""Python modules generated from the project's own .proto files (protos/); regenerate with
``python protos/generate.py``, never edit by hand.

- ``gateway.protos.jaeger.api_v2``: Jaeger's model and CollectorService (``PostSpans``)
- ``gateway.protos.loki``: Loki's push request (package ``logproto``)
- ``gateway.protos.pprof``: pprof's Profile (CPU profiles of the ``pprof`` extension)
- ``gateway.protos.prometheus``: Prometheus remote write (``WriteRequest``, package ``prometheus``)
- ``gateway.protos.otelgw``: wire-compatible views of OTLP requests, for exporters that transcode and
  processors that scan or edit bytes"""
