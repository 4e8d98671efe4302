"""prometheus receiver config: Prometheus' keys (``global`` too), defaults, and every error with its path."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.configtypes import decode, validate_tree
from gateway.errors import ConfigError
from plugins.receivers.prometheus.config import GlobalConfig, parse_size
from plugins.receivers.prometheus.factory import factory


def test_global_defaults_apply_to_jobs() -> None:
    config = decode(factory.create_default_config(), {"config": {
        "global": {"scrape_interval": "15s", "scrape_timeout": "20s"},
        "scrape_configs": [{"job_name": "a", "static_configs": [{"targets": ["h:1"]}]},
                           {"job_name": "b", "scrape_interval": "5s", "scrape_timeout": "1s"}]}})
    assert validate_tree(config) == []
    assert config.config.global_ == GlobalConfig(15.0, 20.0)
    a, b = config.config.scrape_configs
    assert (a.interval(config.config.global_), a.timeout(config.config.global_)) == (15.0, 15.0)
    assert (b.interval(config.config.global_), b.timeout(config.config.global_)) == (5.0, 1.0)
    assert a.body_limit() == 64 * 1024**2 and parse_size("50MB") == 50_000_000 and parse_size("1KiB") == 1024


def test_unknown_keys_name_their_path() -> None:
    with pytest.raises(ConfigError) as error:
        decode(factory.create_default_config(), {"config": {"scrape_configs": [
            {"job_name": "k8s", "kubernetes_sd_configs": [{"role": "pod"}]}]}})
    assert error.value.messages[0].startswith("config::scrape_configs::0::kubernetes_sd_configs: unknown key")


@pytest.mark.parametrize(("jobs", "errors"), [
    ([], ["config::scrape_configs: at least one scrape config is required"]),
    ([{"job_name": "a"}, {"job_name": "a"}], ["config::scrape_configs::1::job_name: 'a' is used by another job"]),
    ([{"job_name": "", "scheme": "ftp", "scrape_interval": "5s", "scrape_timeout": "10s", "sample_limit": -1,
       "body_size_limit": "lots", "static_configs": [{"targets": ["http://h:1/metrics"]}]}],
     ["config::scrape_configs::0::job_name: must not be empty",
      "config::scrape_configs::0::scheme: must be http or https, got 'ftp'",
      "config::scrape_configs::0::scrape_timeout: must not be greater than scrape_interval",
      "config::scrape_configs::0::sample_limit: must be >= 0",
      "config::scrape_configs::0::body_size_limit: expected a size such as 10MB or 64MiB, got 'lots'",
      "config::scrape_configs::0::static_configs::0::targets::0: must be host:port, got 'http://h:1/metrics'"]),
    ([{"job_name": "r", "relabel_configs": [{"action": "hashmod", "regex": "(", "source_labels": ["a"]},
                                            {"action": "uppercase"}]}],
     ["config::scrape_configs::0::relabel_configs::0::regex: invalid regular expression '(': missing ), "
      "unterminated subpattern at position 0",
      "config::scrape_configs::0::relabel_configs::0::target_label: required for action hashmod",
      "config::scrape_configs::0::relabel_configs::0::modulus: must be > 0 for action hashmod",
      "config::scrape_configs::0::relabel_configs::1::action: must be one of replace, keep, drop, labelmap, "
      "labeldrop, labelkeep, hashmod, got 'uppercase'"]),
    ([{"job_name": "s", "basic_auth": {"username": "u", "password": "hunter2"},
       "authorization": {"credentials": "t"}}],
     ["config::scrape_configs::0::basic_auth and authorization: at most one may be set"]),
])
def test_invalid_configs(jobs: list[dict[str, Any]], errors: list[str]) -> None:
    config = decode(factory.create_default_config(), {"config": {"scrape_configs": jobs}})
    assert validate_tree(config) == errors


def test_a_password_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as error:
        decode(factory.create_default_config(), {"config": {"scrape_configs": [
            {"job_name": "s", "basic_auth": {"username": "u", "password": ["hunter2"]}}]}})
    assert "hunter2" not in str(error.value) and "<hidden>" in str(error.value)
