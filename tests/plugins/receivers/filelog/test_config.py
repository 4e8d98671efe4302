"""filelog config: testdata YAML gives the exact Config; typos and bad values give every message with its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from gateway.testing import load_config
from plugins.receivers.filelog.config import Config, MultilineConfig
from plugins.receivers.filelog.factory import create_default_config, factory
from plugins.receivers.filelog.operators.config import (
    ContainerConfig,
    JsonParserConfig,
    MoveConfig,
    RemoveConfig,
    SeverityConfig,
    TimestampConfig,
    parse_byte_size,
)

TESTDATA = Path(__file__).parent / "testdata"


def receiver(name: str) -> dict[str, Any]:
    return yaml.safe_load((TESTDATA / "config.yaml").read_text())["receivers"][name]


def test_defaults_are_the_collectors():
    config = create_default_config()
    assert (config.start_at, config.poll_interval, config.fingerprint_bytes, config.max_log_bytes,
            config.max_concurrent_files, config.encoding, config.include_file_name, config.include_file_path,
            config.force_flush_period, config.delete_after_read, config.storage) == \
        ("end", 0.2, 1000, 1024 * 1024, 1024, "utf-8", True, False, 0.5, False, None)
    assert validate_tree(config) == ["include: at least one glob pattern is required"]


def test_minimal():
    config = decode(create_default_config(), receiver("filelog"))
    assert config == Config(include=["/var/log/app/*.log"])
    assert validate_tree(config) == []


def test_every_key():
    config = decode(create_default_config(), receiver("filelog/custom"))
    assert validate_tree(config) == []
    assert config == Config(
        include=["/var/log/pods/*/*/*.log", "/var/log/app/**/*.log"], exclude=["/var/log/app/*.gz"],
        exclude_older_than=86400.0, start_at="beginning", poll_interval=1.0, fingerprint_size="2KiB",
        max_log_size="512kb", max_concurrent_files=64, encoding="utf-16le", include_file_name=False,
        include_file_path=True, include_file_name_resolved=True, include_file_path_resolved=True,
        multiline=MultilineConfig(line_end_pattern=r"\}$", omit_pattern=True), force_flush_period=2.0,
        preserve_leading_whitespaces=True, preserve_trailing_whitespaces=True, delete_after_read=True,
        storage="file_storage/offsets", attributes={"team": "web"}, resource={"service.name": "shop"},
        operators=(
            ContainerConfig(type="container", format="crio", add_metadata_from_filepath=False, max_log_size=0),
            JsonParserConfig(type="json_parser", id="app", if_='body startsWith "{"', on_error="drop_quiet",
                             parse_to="attributes.app",
                             timestamp=TimestampConfig(parse_from="attributes.app.ts", layout_type="epoch",
                                                       layout="ms"),
                             severity=SeverityConfig(parse_from="attributes.app.level", preset="none",
                                                     mapping={"error": ["oops", "5xx"]}, overwrite_text=True)),
            MoveConfig(type="move", from_="attributes.app", to="body", output="done"),
            RemoveConfig(type="remove", id="done", field="attributes.team"),
        ))
    assert (config.fingerprint_bytes, config.max_log_bytes, config.codec) == (2048, 512_000, "utf-16-le")


def test_typos_name_the_key_and_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        decode(create_default_config(), receiver("filelog/typo"))
    messages = info.value.messages
    assert len(messages) == 2  # the receiver's typo and its operator's, decoded by the one config decoder
    assert messages[0].startswith("start_att: unknown key; valid keys are: attributes, delete_after_read,")
    assert messages[1].startswith("operators::0::regexp: unknown key; valid keys are: id, if, on_error,")


def test_operator_typos_name_the_operator():
    data = {"include": ["/x"], "operators": [{"type": "regex_parser", "regexp": "x"}, {"type": "jsonparser"}]}
    with pytest.raises(ConfigError) as info:
        load_config(factory, data)
    assert info.value.messages == [
        "operators::0::regexp: unknown key; valid keys are: id, if, on_error, output, parse_from, parse_to, regex, "
        "severity, timestamp, type",
        "operators::1::type: must be one of add, container, copy, filter, flatten, json_parser, key_value_parser, "
        "move, regex_parser, remove, router, severity_parser, time_parser; got 'jsonparser'",
        "operators::0::regex: required"]  # the checks run beside the typo: without regexp, regex is missing


def test_every_invalid_value_is_reported_at_once():
    config = decode(create_default_config(), receiver("filelog/invalid"))
    assert sorted(validate_tree(config)) == sorted([
        "multiline::line_start_pattern: exactly one of line_start_pattern and line_end_pattern is required",
        "operators::0::on_error: must be one of send, send_quiet, drop, drop_quiet, got 'explode'",
        "operators::1::routes: at least one route is required",
        "include: at least one glob pattern is required",
        "start_at: must be beginning or end, got 'middle'",
        "delete_after_read: needs start_at: beginning (otherwise unread data would be deleted)",
        "poll_interval: must be > 0",
        "fingerprint_size: must be at least 16 bytes, got 8",
        "max_log_size: expected a size such as 1MiB, 100kb or 16384, got 'lots'",
        "max_concurrent_files: must be >= 1, got 0",
        "encoding: must be one of ascii, big5, gbk, iso-8859-1, latin1, nop, shift-jis, shift_jis, us-ascii, "
        "utf-16be, utf-16le, utf-8, utf-8-raw, utf8, got 'ebcdic'",
        "storage: invalid component id 'file_storage/': expected 'type' or 'type/name'",
    ])


@pytest.mark.parametrize(("text", "size"), [("1kb", 1000), ("1KiB", 1024), ("1MiB", 1 << 20), ("16384", 16384),
                                            (4096, 4096), ("1.5mb", 1_500_000), ("1_000", 1000)])
def test_byte_sizes(text, size):
    assert parse_byte_size(text) == size


def test_storage_must_be_a_file_storage_extension(tmp_path):
    import asyncio

    from gateway._host.telemetry import Telemetry
    from gateway.component import Kind, Signal
    from gateway.testing import Sink, make_host, settings_for
    from plugins.receivers.filelog.factory import create_logs

    config = decode(create_default_config(), {"include": [str(tmp_path / "*.log")], "storage": "file_storage/x"})
    receiver = create_logs(settings_for(Kind.RECEIVER, "filelog", Signal.LOGS, Telemetry()), config, Sink())
    with pytest.raises(ConfigError, match="storage: file_storage/x is not an extension listed in service::extensions"):
        asyncio.run(receiver.start(make_host()))
