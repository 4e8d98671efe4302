"""Config of the ``memory_limiter`` processor, key for key the Collector's."""

from __future__ import annotations

from dataclasses import dataclass

from gateway import ConfigError, Duration


@dataclass(frozen=True)
class Config:
    #: How often resident memory is measured. Required (> 0), as in the Collector; 1s is a good start.
    check_interval: Duration = 0.0
    #: Hard limit of the process's resident memory in MiB. One of limit_mib or limit_percentage is required.
    limit_mib: int = 0
    #: Headroom below limit_mib for growth between two checks; the soft limit is limit_mib - spike_limit_mib.
    #: Above the soft limit, data is refused. Default 0 means 20% of limit_mib.
    spike_limit_mib: int = 0
    #: Hard limit as a percentage of the container's memory limit (cgroup v2 memory.max, v1
    #: memory.limit_in_bytes), or of the machine's RAM when there is none. Used when limit_mib is 0.
    limit_percentage: int = 0
    #: Headroom as a percentage of the same total. Default 0 means 20% of the hard limit.
    spike_limit_percentage: int = 0
    #: otelgw: the delay refused senders are asked to wait (RetryInfo / Retry-After). Default 1s.
    retry_after: Duration = 1.0

    def validate(self) -> None:
        errors = []
        if self.check_interval <= 0:
            errors.append("check_interval: must be > 0 (for example 1s)")
        if self.limit_mib < 0 or self.spike_limit_mib < 0:
            errors.append("limit_mib: limit_mib and spike_limit_mib must not be negative")
        elif self.limit_mib == 0 and self.limit_percentage == 0:
            errors.append("limit_mib: one of limit_mib or limit_percentage must be > 0")
        elif self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            errors.append(f"spike_limit_mib: must be smaller than limit_mib ({self.limit_mib}), "
                          f"got {self.spike_limit_mib}")
        if not 0 <= self.limit_percentage <= 100:
            errors.append(f"limit_percentage: must be between 0 and 100, got {self.limit_percentage}")
        elif not self.limit_mib and self.limit_percentage and not (
                0 <= self.spike_limit_percentage < self.limit_percentage):
            errors.append(f"spike_limit_percentage: must be between 0 and limit_percentage "
                          f"({self.limit_percentage}), got {self.spike_limit_percentage}")
        if self.retry_after < 0:
            errors.append("retry_after: must not be negative")
        if errors:
            raise ConfigError(errors)
