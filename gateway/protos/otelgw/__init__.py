"""Wire-compatible views of OTLP requests (``otlp_views_pb2``). Generated from protos/otelgw."""
