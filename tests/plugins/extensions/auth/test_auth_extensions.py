"""bearertokenauth and basicauth in isolation: what they accept, token-file rotation, secrets never shown."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest

from gateway import Authenticator, ClientAuthenticator, ComponentID, ConfigError, Storage
from gateway.component import Kind
from gateway.configtypes import decode, validate_tree
from gateway.testing import make_host, settings_for
from plugins.extensions.basicauth.extension import factory as basic_factory
from plugins.extensions.bearertokenauth.extension import factory as bearer_factory


def bearer(config: dict):
    cfg = decode(bearer_factory.create_default_config(), config)
    return bearer_factory.create_extension(settings_for(Kind.EXTENSION, "bearertokenauth"), cfg), cfg


def basic(config: dict):
    cfg = decode(basic_factory.create_default_config(), config)
    assert validate_tree(cfg) == []
    return basic_factory.create_extension(settings_for(Kind.EXTENSION, "basicauth"), cfg), cfg


async def test_bearer_accepts_configured_tokens_only():
    auth, cfg = bearer({"token": "alpha-secret", "tokens": ["beta-secret"]})
    await auth.start(None)
    assert auth.authenticate({"authorization": "Bearer alpha-secret"})
    assert auth.authenticate({"authorization": "bearer beta-secret"})  # the scheme is case-insensitive
    for headers in ({}, {"authorization": "Bearer"}, {"authorization": "Bearer wrong"},
                    {"authorization": "Basic alpha-secret"}, {"x-token": "alpha-secret"}):
        assert not auth.authenticate(headers), headers
    assert "alpha-secret" not in repr(cfg) and "beta-secret" not in repr(cfg)


async def test_bearer_token_file_rotates_without_restart(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n")
    auth, _ = bearer({"filename": str(tokens)})
    await auth.start(None)
    assert auth.authenticate({"authorization": "Bearer first-token"})
    tokens.write_text("second-token\n")
    later = time.time() + 5
    os.utime(tokens, (later, later))
    auth._checked = 0.0  # the file is checked at most once a second; skip the wait
    assert auth.authenticate({"authorization": "Bearer second-token"})
    assert not auth.authenticate({"authorization": "Bearer first-token"})
    tokens.unlink()  # a rotation in progress: keep the last tokens read, lock nobody out
    auth._checked = 0.0
    assert auth.authenticate({"authorization": "Bearer second-token"})


async def test_basic_plain_and_sha_entries():
    sha = "{SHA}" + base64.b64encode(hashlib.sha1(b"wonderland").digest()).decode()
    auth, cfg = basic({"htpasswd": {"inline": f"bob:builder\nalice:{sha}\n# comment\n"}})
    await auth.start(None)

    def header(user: str, password: str) -> dict[str, str]:
        return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert auth.authenticate(header("bob", "builder"))
    assert auth.authenticate(header("alice", "wonderland"))
    assert not auth.authenticate(header("alice", "builder"))
    assert not auth.authenticate(header("carol", "builder"))
    assert not auth.authenticate({"authorization": "Basic !!!not-base64"})
    assert not auth.authenticate({})
    assert "builder" not in repr(cfg) and "SHA" not in repr(cfg)


@pytest.mark.parametrize(("config", "message"), [
    ({}, "htpasswd: file or inline is required (or client_auth, to send credentials)"),
    ({"client_auth": {"password": "x"}}, "client_auth::username: required"),
    ({"client_auth": {"username": "a:b", "password": "x"}},
     "client_auth::username: must not contain ':' (Basic auth separates it from the password with one)"),
    ({"htpasswd": {"inline": "nocolon"}}, "htpasswd::inline: line 1: expected user:password"),
    ({"htpasswd": {"inline": "u:$apr1$abc"}}, "htpasswd::inline: line 1: only plain and {SHA} entries are supported"),
])
def test_basic_config_errors(config, message):
    cfg = decode(basic_factory.create_default_config(), config)
    assert validate_tree(cfg) == [message]


def test_a_missing_htpasswd_file_is_for_run_to_name_not_validate():
    cfg = decode(basic_factory.create_default_config(), {"htpasswd": {"file": "/nonexistent/htpasswd"}})
    assert validate_tree(cfg) == []  # a dry run: tests/test_collector_dialect.py shows run naming the file


@pytest.mark.parametrize("config", [{"tokenz": "do-not-print-me"}, {"token": ["do-not-print-me"]},
                                    {"tokens": "do-not-print-me"}, {"tokens": [["do-not-print-me"]]}])
def test_bearer_config_errors_never_echo_a_secret(config):
    with pytest.raises(ConfigError) as info:
        decode(bearer_factory.create_default_config(), config)
    assert "do-not-print-me" not in str(info.value)
    assert str(info.value).split(":")[0] in ("tokenz", "token", "tokens", "tokens::0")


async def test_client_sides_give_the_header_their_server_sides_accept(tmp_path):
    """basicauth client_auth and bearertokenauth's client header, checked by the same extensions' server side."""
    auth, cfg = basic({"htpasswd": {"inline": "alice:wonder:land"},
                       "client_auth": {"username": "alice", "password": "wonder:land"}})
    await auth.start(None)
    sent = auth.client_headers()
    assert auth.authenticate({k.lower(): v for k, v in sent.items()})
    assert "wonder" not in repr(cfg)
    token_file = tmp_path / "token"
    token_file.write_text("first-token\nsecond-token\n")
    auth, cfg = bearer({"filename": str(token_file), "scheme": ""})
    await auth.start(None)
    assert auth.client_headers() == {"Authorization": "first-token"}
    assert auth.authenticate({"authorization": "first-token"})
    assert not auth.authenticate({"authorization": "Bearer first-token"})
async def test_bearer_is_found_as_a_server_and_as_a_client_authenticator(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    auth, _ = bearer({"filename": str(token_file)})
    host = make_host()
    host.extensions[ComponentID("bearertokenauth")] = auth
    await auth.start(host)
    client = host.extension("bearertokenauth", ClientAuthenticator, "auth::authenticator")
    server = host.extension("bearertokenauth", Authenticator, "auth::authenticator")
    assert server.authenticate({key.lower(): value for key, value in client.client_headers().items()})
    assert client.client_headers() == {"Authorization": "Bearer from-file"}


async def test_basicauth_is_no_storage_and_the_error_says_why():
    auth, _ = basic({"htpasswd": {"inline": "ann:pw"}})
    host = make_host()
    host.extensions[ComponentID("basicauth")] = auth
    with pytest.raises(ConfigError, match="extension basicauth is not a Storage extension: BasicAuth "
                                          "lacks queue_directory"):
        host.extension("basicauth", Storage, "storage")
