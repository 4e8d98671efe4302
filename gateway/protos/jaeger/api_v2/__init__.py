"""Jaeger api_v2: ``model_pb2`` (Batch, Span, Process, ...) and ``collector_pb2`` /
``collector_pb2_grpc`` (CollectorService/PostSpans). Generated from protos/jaeger/api_v2."""
