"""otlp receiver config: testdata YAML gives the exact Config; typos and bad values the exact messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway._host.config import build_config
from gateway._host.registry import load_registry
from gateway.component import Kind, Signal
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.testing import Sink, settings_for
from plugins.receivers.otlp.config import Config, GrpcConfig, HttpConfig, Protocols
from plugins.receivers.otlp.factory import create_default_config, factory

TESTDATA = Path(__file__).parent / "testdata"


def receivers(name: str) -> dict[str, Any]:
    return yaml.safe_load((TESTDATA / name).read_text())["receivers"]


def load(name: str, receiver: str) -> Config:
    return decode(create_default_config(), receivers(name)[receiver])


def test_default_config_has_both_protocols_with_collector_defaults():
    config = create_default_config()
    assert config == Config(Protocols(
        grpc=GrpcConfig(endpoint="localhost:4317", max_recv_msg_size_mib=64, max_concurrent_streams=0),
        http=HttpConfig(endpoint="localhost:4318", max_request_body_size=67108864, traces_url_path="/v1/traces",
                        metrics_url_path="/v1/metrics", logs_url_path="/v1/logs")))
    assert validate_tree(config) == []


@pytest.mark.parametrize(("receiver", "expected"), [
    ("otlp", Config(Protocols(grpc=GrpcConfig(), http=HttpConfig()))),
    ("otlp/grpc_only", Config(Protocols(grpc=GrpcConfig(), http=None))),
    ("otlp/http_only", Config(Protocols(grpc=None, http=HttpConfig()))),
    ("otlp/custom", Config(Protocols(
        grpc=GrpcConfig(endpoint="127.0.0.1:14317", max_recv_msg_size_mib=8, max_concurrent_streams=100,
                        include_metadata=True),
        http=HttpConfig(endpoint="[::1]:14318", max_request_body_size=1048576,
                        traces_url_path="/otlp/traces", metrics_url_path="/otlp/metrics",
                        logs_url_path="/otlp/logs", include_metadata=True)))),
])
def test_testdata_gives_the_exact_config(receiver, expected):
    config = load("config.yaml", receiver)
    assert config == expected
    assert validate_tree(config) == []


@pytest.mark.parametrize(("receiver", "messages"), [
    ("otlp/no_protocols", ["protocols: must specify at least one protocol (grpc or http)"]),
    ("otlp/null_protocols", ["protocols: must specify at least one protocol (grpc or http)"]),
    ("otlp/bad_endpoint",
     ["protocols::grpc::endpoint: invalid endpoint 'localhost': expected host:port, e.g. 0.0.0.0:4317"]),
    ("otlp/grpc_limits", ["protocols::grpc::max_recv_msg_size_mib: must be between 1 and 2047, got 0",
                          "protocols::grpc::max_concurrent_streams: must be >= 0 (0 = grpc's default), got -1"]),
    ("otlp/grpc_limit_too_big",
     ["protocols::grpc::max_recv_msg_size_mib: must be between 1 and 2047, got 4096"]),
    ("otlp/http_limits",
     ["protocols::http::endpoint: invalid endpoint '0.0.0.0:99999': expected host:port, e.g. 0.0.0.0:4317",
      "protocols::http::max_request_body_size: must be > 0, got 0"]),
    ("otlp/same_paths", ["protocols::http::traces_url_path: the traces, metrics and logs paths must differ, "
                         "got /v1/otlp, /v1/metrics, /v1/otlp"]),
    ("otlp/same_endpoint", ["protocols: grpc and http cannot both listen on 0.0.0.0:4317"]),
])
def test_invalid_values_give_the_exact_validate_messages(receiver, messages):
    assert validate_tree(load("invalid.yaml", receiver)) == messages


@pytest.mark.parametrize(("receiver", "messages"), [
    ("otlp/typo_key", ["protocols::grpc::endpont: unknown key; valid keys are: auth, endpoint, include_metadata, "
                       "keepalive, max_concurrent_streams, max_in_flight_size_mib, max_recv_msg_size_mib, "
                       "read_buffer_size, tls, transport, write_buffer_size"]),
    ("otlp/typo_protocol", ["protocols::grcp: unknown key; valid keys are: grpc, http"]),
    ("otlp/wrong_types", ["protocols::grpc::max_recv_msg_size_mib: expected int, got str 'big'",
                          "protocols::http: expected a mapping, got int 4318"]),
    ("otlp/top_level", ["protocol: unknown key; valid keys are: protocols"]),
])
def test_typos_give_unknown_key_errors(receiver, messages):
    with pytest.raises(ConfigError) as caught:
        load("typos.yaml", receiver)
    assert caught.value.messages == messages


def test_the_gateway_loader_reports_receiver_errors_with_their_full_path():
    raw = {"receivers": receivers("typos.yaml") | receivers("invalid.yaml"),
           "exporters": {"debug": None},
           "service": {"pipelines": {"traces": {"receivers": ["otlp/typo_key"], "exporters": ["debug"]}}}}
    with pytest.raises(ConfigError) as caught:
        build_config(raw, load_registry())
    messages = caught.value.messages
    assert ("receivers::otlp/typo_key::protocols::grpc::endpont: unknown key; valid keys are: auth, endpoint, "
            "include_metadata, keepalive, max_concurrent_streams, max_in_flight_size_mib, max_recv_msg_size_mib, "
            "read_buffer_size, tls, transport, write_buffer_size") in messages
    assert ("receivers::otlp/same_endpoint::protocols: grpc and http cannot both listen on 0.0.0.0:4317"
            in messages)
    # every typo and every invalid value, none lost; and the checks still run beside a typo: with `grcp` not
    # read, otlp/typo_protocol has no protocol, and says so
    assert "receivers::otlp/typo_protocol::protocols: must specify at least one protocol (grpc or http)" in messages
    assert len(messages) == 5 + 10 + 1


def create(signal: Signal, config: Config, component_id: str = "otlp") -> Any:
    return factory.create_fn(signal)(settings_for(Kind.RECEIVER, component_id, signal), config, Sink())


async def test_every_signal_of_one_receiver_shares_one_object():
    config = create_default_config()
    created = [create(signal, config) for signal in Signal]
    assert created[0].component is created[1].component is created[2].component
    other_id = create(Signal.TRACES, config, "otlp/other")
    other_config = create(Signal.TRACES, create_default_config())
    assert other_id.component is not created[0].component
    assert other_config.component is not created[0].component
    for handle in (*created, other_id, other_config):
        await handle.shutdown()


async def test_shutdown_releases_the_shared_object_so_a_new_one_can_start():
    config = create_default_config()
    first = create(Signal.TRACES, config)
    await first.shutdown()  # never started
    second = create(Signal.TRACES, config)
    assert second.component is not first.component
    await second.shutdown()
