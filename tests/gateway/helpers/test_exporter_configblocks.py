"""The shared ``tls`` client block that exporters embed (gateway.configblocks)."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc
import pytest

from gateway._host.files import file_fields
from gateway.configblocks import TLSClientConfig
from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError

CERTS = Path(__file__).parents[2] / "plugins" / "exporters" / "otlp_http" / "testdata"
CERT, KEY = str(CERTS / "localhost.crt"), str(CERTS / "localhost.key")


def test_decodes_the_collector_keys() -> None:
    config = decode(TLSClientConfig(), {"insecure": True, "ca_file": CERT, "server_name_override": "x"})
    assert config == TLSClientConfig(insecure=True, ca_file=CERT, server_name_override="x")
    with pytest.raises(ConfigError) as info:
        decode(TLSClientConfig(), {"insecure_skip_verfy": True})
    assert info.value.messages == [
        "insecure_skip_verfy: unknown key; valid keys are: ca_file, cert_file, insecure, "
        "insecure_skip_verify, key_file, min_version, reload_interval, server_name_override"]


def test_validate_messages(tmp_path: Path) -> None:
    assert validate_tree(TLSClientConfig()) == []
    missing = str(tmp_path / "ca.pem")
    # validate is a dry run: the missing file is for `otelgw run` to name (gateway._host.files), not for validate
    assert validate_tree(TLSClientConfig(ca_file=missing, key_file=KEY)) == [
        "cert_file: must be set together with key_file",
    ]
    assert list(file_fields(TLSClientConfig(ca_file=missing, key_file=KEY), "tls")) == [
        ("tls::ca_file", missing), ("tls::key_file", KEY)]


def test_ssl_context_verifies_by_default_and_can_skip() -> None:
    strict = TLSClientConfig(ca_file=CERT).ssl_context()
    assert strict.verify_mode is ssl.CERT_REQUIRED and strict.check_hostname
    lax = TLSClientConfig(insecure_skip_verify=True).ssl_context()
    assert lax.verify_mode is ssl.CERT_NONE and not lax.check_hostname
    TLSClientConfig(cert_file=CERT, key_file=KEY).ssl_context()  # loads the client certificate


def test_grpc_credentials_read_the_files() -> None:
    assert isinstance(TLSClientConfig(ca_file=CERT, cert_file=CERT, key_file=KEY).grpc_credentials(),
                      grpc.ChannelCredentials)
