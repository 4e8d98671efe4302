"""E-mail addresses, internationalised ones included (Unicode letters in the local part and domain)."""

from __future__ import annotations

import re

from .base import Anchored, RegexDetector

__all__ = ["EMAIL"]

# Local part: word characters and . % + -. Domain: labels that start and end with a letter or digit, then a dot
# and a top-level domain of letters. Unicode-aware on purpose: the prefilter sees non-ASCII bytes unchanged.
# A match starts where a run of local-part characters starts: the same matches as without the look-behind (the
# domain does not depend on where the local part begins), but a long run that is no address is tried once, not
# once per character (which made a 20,000-character value take seconds).
_PATTERN = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,63}")

EMAIL = RegexDetector(
    name="email",
    pattern=_PATTERN,
    # In bytes: a local-part byte, '@', a label byte, more domain bytes, then a dot and the top-level domain's
    # first letter: an ASCII one, or the UTF-8 lead byte (0xC2-0xF4) of a non-ASCII one. Random binary
    # (timestamps, ids) holds '@' and '.' often enough; a continuation byte (0x80-0xBF) after the dot is no letter.
    triggers=(Anchored("@", re.compile(rb"[\w.%+\-\x80-\xff]@[\w\x80-\xff][\w\-.\x80-\xff]*?\.[A-Za-z\xc2-\xf4]"),
                       offset=1),),
    normalizer=str.lower,
)
