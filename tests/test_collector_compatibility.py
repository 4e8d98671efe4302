"""docs/collector-compatibility.md is what bench.compat computes from the components' config classes now, and the
computation sees what a config accepts (an option the decoder takes counts; one it refuses does not)."""

from __future__ import annotations

from bench import compat
from gateway import Kind
from gateway._host.registry import load_registry
from plugins.exporters.otlp_grpc.config import Config as OtlpGrpcConfig


def test_the_committed_table_is_up_to_date() -> None:
    assert compat.DOC.read_text() == compat.render(), "docs/collector-compatibility.md drifted: run `make compat`"


def test_every_listed_component_is_shipped_and_accepted_means_decodable() -> None:
    registry = load_registry()
    for kind, name in compat.COLLECTOR:
        assert registry.get(kind, name) is not None
    assert compat.accepts("otlp_grpc", OtlpGrpcConfig, "keepalive::permit_without_stream")
    assert compat.accepts("otlp_grpc", OtlpGrpcConfig, "sending_queue::batch::min_size")
    assert not compat.accepts("otlp_grpc", OtlpGrpcConfig, "keepalive::nope")
    assert not compat.accepts("otlp_grpc", OtlpGrpcConfig, "endpoint::host")  # a scalar has no keys below it
    receiver = type(registry.get(Kind.RECEIVER, "otlp").create_default_config())
    assert compat.accepts("otlp", receiver, "protocols::grpc::transport")
    assert not compat.accepts("otlp", receiver, "protocols::http::write_timeout")
