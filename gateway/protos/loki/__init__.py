"""Loki push (package ``logproto``): ``push_pb2``. Generated from protos/loki."""
