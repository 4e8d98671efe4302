"""Wire-compatible views of OTLP requests: ``otlp_views_pb2`` (fields as bytes, for exporters that
transcode), ``item_views_pb2`` (items as bytes, for processors that scan them) and ``ottl_views_pb2``
(span attributes as bytes, for OTTL statements that edit them). Generated from protos/otelgw."""
