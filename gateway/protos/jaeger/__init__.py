"""Jaeger (generated from protos/jaeger)."""
