from __future__ import annotations

from dataclasses import dataclass, field

from gateway import ConfigError, Duration


@dataclass(frozen=True)
class Config:
    #: Items (spans, metric data points, log records) that trigger a send as soon as that many are held.
    #: A trigger, not a cap: one large request makes a bigger batch unless send_batch_max_size is set.
    #: 0 = send every request at once (split by send_batch_max_size only).
    send_batch_size: int = 8192
    #: Upper bound on items per sent batch; larger ones are split. 0 = no limit. Must be >= send_batch_size.
    send_batch_max_size: int = 0
    #: Send whatever is held this long after the first item of the batch arrived. 0 = no buffering at all.
    timeout: Duration = 0.2
    #: Client metadata keys (request headers kept by a receiver's include_metadata) whose values batch apart:
    #: each distinct combination gets its own batches, which leave with those keys as their sender.
    metadata_keys: list[str] = field(default_factory=list)
    #: Most distinct combinations of metadata_keys values; requests of a new one beyond it are refused
    #: (retryable). Default 1000.
    metadata_cardinality_limit: int = 1000

    def validate(self) -> None:
        errors = []
        if self.send_batch_size < 0:
            errors.append("send_batch_size: must be >= 0")
        if self.send_batch_max_size < 0:
            errors.append("send_batch_max_size: must be >= 0")
        elif 0 < self.send_batch_max_size < self.send_batch_size:
            errors.append(
                f"send_batch_max_size: must be 0 (no limit) or >= send_batch_size ({self.send_batch_size}), "
                f"got {self.send_batch_max_size}"
            )
        if self.metadata_cardinality_limit < 1:
            errors.append(f"metadata_cardinality_limit: must be >= 1, got {self.metadata_cardinality_limit}")
        if errors:
            raise ConfigError(errors)
