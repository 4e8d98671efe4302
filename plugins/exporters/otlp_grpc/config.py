"""The ``otlp_grpc`` exporter's config: the SDK's OTLP/gRPC client block, which ``jaeger`` and ``load_balancing``
reuse too (``gateway.OtlpGrpcConfig``)."""

from __future__ import annotations

from gateway import OtlpGrpcConfig

__all__ = ["Config"]

Config = OtlpGrpcConfig
