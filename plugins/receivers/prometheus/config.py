"""Config of the ``prometheus`` receiver: Prometheus' own ``scrape_configs`` under ``config:``, as in the Collector.

Key names are Prometheus' (``tls_config``, ``basic_auth``, ``authorization``), not the Collector's blocks, so a
Prometheus configuration can be pasted in unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gateway import ConfigError, Duration

from .relabel import RelabelConfig

_SIZE = re.compile(r"(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
#: Largest body read from a target when body_size_limit is 0 (Prometheus: unlimited; here memory stays bounded).
DEFAULT_BODY_LIMIT = 64 * 1024**2


def parse_size(value: str | int) -> int:
    """``"50MB"`` → 50_000_000, ``"10MiB"`` → 10_485_760, ``123`` → 123 bytes."""
    match = _SIZE.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"expected a size such as 10MB or 64MiB, got {value!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


@dataclass(frozen=True)
class GlobalConfig:
    #: Default scrape interval of every job. Default 1m.
    scrape_interval: Duration = 60.0
    #: Default scrape timeout of every job. Default 10s.
    scrape_timeout: Duration = 10.0


@dataclass(frozen=True)
class StaticConfig:
    #: host:port of each target.
    targets: list[str] = field(default_factory=list)
    #: Labels added to every target of this group.
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileSDConfig:
    #: JSON or YAML files (the last path element may be a glob) holding lists of ``{targets, labels}``.
    files: list[str] = field(default_factory=list)
    #: How often the files are re-read. Default 5m.
    refresh_interval: Duration = 300.0

    def validate(self) -> None:
        if not self.files:
            raise ConfigError("files: at least one file is required")


@dataclass(frozen=True)
class BasicAuth:
    username: str = ""
    #: Never logged. Use password_file to keep it out of the config.
    password: str = field(default="", repr=False)
    #: File whose content (without trailing newline) is the password, read at every scrape.
    password_file: str = ""

    def validate(self) -> None:
        if self.password and self.password_file:
            raise ConfigError("password and password_file: at most one may be set")


@dataclass(frozen=True)
class Authorization:
    #: The scheme of the Authorization header. Default Bearer.
    type: str = "Bearer"
    #: Never logged. Use credentials_file to keep it out of the config.
    credentials: str = field(default="", repr=False)
    #: File whose content is the credentials, read at every scrape.
    credentials_file: str = ""

    def validate(self) -> None:
        if self.credentials and self.credentials_file:
            raise ConfigError("credentials and credentials_file: at most one may be set")


@dataclass(frozen=True)
class TLSConfig:
    #: PEM CA certificates that sign the target's certificate; empty uses the system roots.
    ca_file: str = ""
    #: PEM client certificate for targets that require mutual TLS; needs key_file.
    cert_file: str = ""
    key_file: str = ""
    #: Host name the target's certificate must carry, instead of the target's host.
    server_name: str = ""
    #: Accept any certificate. For tests only: it defeats TLS.
    insecure_skip_verify: bool = False
    #: TLS10, TLS11, TLS12 or TLS13. Empty means TLS12.
    min_version: str = ""

    def validate(self) -> None:
        errors = []
        if bool(self.cert_file) != bool(self.key_file):
            errors.append("cert_file and key_file: must be set together")
        if self.min_version not in ("", "TLS10", "TLS11", "TLS12", "TLS13"):
            errors.append(f"min_version: must be TLS10, TLS11, TLS12 or TLS13, got {self.min_version!r}")
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class ScrapeConfig:
    #: Name of the job: the ``job`` label, and ``service.name`` of the scraped data. Required, unique.
    job_name: str = ""
    #: How often each target is scraped. Default: global scrape_interval (1m).
    scrape_interval: Duration | None = None
    #: How long a scrape may take. Default: global scrape_timeout (10s); at most scrape_interval.
    scrape_timeout: Duration | None = None
    #: HTTP path on the target. Default /metrics.
    metrics_path: str = "/metrics"
    #: http or https. Default http.
    scheme: str = "http"
    #: URL query parameters, each with a list of values.
    params: dict[str, list[str]] = field(default_factory=dict)
    #: true: labels from the target win over the target's job, instance and other labels; false (default):
    #: clashing labels from the target are kept as ``exported_<name>``.
    honor_labels: bool = False
    #: Use timestamps the target exposes. Default true.
    honor_timestamps: bool = True
    #: Ask for gzip. Default true.
    enable_compression: bool = True
    static_configs: list[StaticConfig] = field(default_factory=list)
    file_sd_configs: list[FileSDConfig] = field(default_factory=list)
    #: Applied to each target's labels before scraping (keep, drop, replace, ...).
    relabel_configs: list[RelabelConfig] = field(default_factory=list)
    #: Applied to each scraped sample (``__name__`` is its metric name).
    metric_relabel_configs: list[RelabelConfig] = field(default_factory=list)
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    tls_config: TLSConfig = field(default_factory=TLSConfig)
    #: A scrape with more samples than this (after metric relabeling) fails: ``up`` 0. 0 means no limit.
    sample_limit: int = 0
    #: A scrape with a sample carrying more labels than this fails. 0 means no limit.
    label_limit: int = 0
    #: A scrape with a label name longer than this fails. 0 means no limit.
    label_name_length_limit: int = 0
    #: A scrape with a label value longer than this fails. 0 means no limit.
    label_value_length_limit: int = 0
    #: Largest body read (``10MB``, ``64MiB``, bytes); a larger one fails the scrape. 0 means 64MiB.
    body_size_limit: str = "0"

    def validate(self) -> None:
        errors = []
        if not self.job_name:
            errors.append("job_name: must not be empty")
        if self.scheme not in ("http", "https"):
            errors.append(f"scheme: must be http or https, got {self.scheme!r}")
        if not self.metrics_path.startswith("/"):
            errors.append(f"metrics_path: must start with /, got {self.metrics_path!r}")
        if self.scrape_interval is not None and self.scrape_interval <= 0:
            errors.append("scrape_interval: must be > 0")
        if (self.scrape_interval is not None and self.scrape_timeout is not None
                and self.scrape_timeout > self.scrape_interval):
            errors.append("scrape_timeout: must not be greater than scrape_interval")
        if self.basic_auth is not None and self.authorization is not None:
            errors.append("basic_auth and authorization: at most one may be set")
        for key in ("sample_limit", "label_limit", "label_name_length_limit", "label_value_length_limit"):
            if getattr(self, key) < 0:
                errors.append(f"{key}: must be >= 0")
        try:
            parse_size(self.body_size_limit)
        except ValueError as exc:
            errors.append(f"body_size_limit: {exc}")
        for i, group in enumerate(self.static_configs):
            errors.extend(f"static_configs::{i}::targets::{j}: must be host:port, got {t!r}"
                          for j, t in enumerate(group.targets) if not t or "/" in t)
        if errors:
            raise ConfigError(errors)

    def interval(self, defaults: GlobalConfig) -> float:
        return self.scrape_interval if self.scrape_interval is not None else defaults.scrape_interval

    def timeout(self, defaults: GlobalConfig) -> float:
        timeout = self.scrape_timeout if self.scrape_timeout is not None else defaults.scrape_timeout
        return min(timeout, self.interval(defaults))

    def body_limit(self) -> int:
        return parse_size(self.body_size_limit) or DEFAULT_BODY_LIMIT


@dataclass(frozen=True)
class PrometheusConfig:
    """Prometheus' configuration file format: ``global`` and ``scrape_configs``."""

    global_: GlobalConfig = field(default_factory=GlobalConfig)
    scrape_configs: list[ScrapeConfig] = field(default_factory=list)

    def validate(self) -> None:
        if not self.scrape_configs:
            raise ConfigError("scrape_configs: at least one scrape config is required")
        seen: set[str] = set()
        errors = []
        for i, scrape in enumerate(self.scrape_configs):
            if scrape.job_name and scrape.job_name in seen:
                errors.append(f"scrape_configs::{i}::job_name: {scrape.job_name!r} is used by another job")
            seen.add(scrape.job_name)
        if errors:
            raise ConfigError(errors)


@dataclass(frozen=True)
class Config:
    #: The Prometheus configuration: ``global`` and ``scrape_configs``.
    config: PrometheusConfig = field(default_factory=PrometheusConfig)
    #: Also report scrape_timeout_seconds, scrape_sample_limit and scrape_body_size_bytes. Default false.
    report_extra_scrape_metrics: bool = False
