from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Config"]


@dataclass(frozen=True)
class Config:
    """The Collector's forward connector has no settings; neither has this one."""

    def validate(self) -> None:
        return None
