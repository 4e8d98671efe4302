"""National identifiers: the US Social Security Number, written in its dashed form 123-45-6789.

Nine bare digits (or spaced groups) are not taken for an SSN: too many order and account numbers look the same.
"""

from __future__ import annotations

import re

from .base import Literal, RegexDetector

__all__ = ["US_SSN"]

# Area 001-899 except 666, group 01-99, serial 0001-9999.
_PATTERN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", re.ASCII)

US_SSN = RegexDetector(
    name="us_ssn",
    pattern=_PATTERN,
    triggers=(Literal("000-00-0000"),),
    normalizer=lambda secret: secret.replace("-", ""),
)
