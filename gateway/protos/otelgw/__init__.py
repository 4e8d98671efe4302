"""Wire-compatible views of OTLP requests: ``otlp_views_pb2`` (fields as bytes, for exporters that
transcode) and ``item_views_pb2`` (items as bytes, for processors that scan them). Generated from
protos/otelgw."""
