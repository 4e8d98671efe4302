"""Prometheus remote write (package ``prometheus``): ``remote_pb2`` (WriteRequest) and
``types_pb2``. Generated from protos/prometheus."""
