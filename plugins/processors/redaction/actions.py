"""What replaces a match: the mask text, a keyed hash (pseudonym), ``<N chars>``, or nothing (drop)."""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

__all__ = ["Action", "Replacer"]


class Action(enum.Enum):
    MASK = "mask"
    HASH = "hash"
    LENGTH = "length"
    DROP = "drop"


_DIGESTS: dict[str, Callable[..., Any]] = {
    "md5": hashlib.md5, "sha1": hashlib.sha1, "sha3": hashlib.sha3_256,
    "hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512,
}
_CACHE_LIMIT = 65536


class Replacer:
    """Turns a matched secret into its replacement; the drop action is the caller's business."""

    def __init__(self, mask: str, hash_function: str, hmac_key: str, hash_length: int) -> None:
        self.mask = mask
        self.hash_function = hash_function or "hmac-sha256"
        self._digest = _DIGESTS[self.hash_function]
        self._key = hmac_key.encode() if self.hash_function.startswith("hmac-") else None
        self._length = hash_length or None
        # Customers recur across spans and logs; an HMAC costs a few microseconds, a dict lookup much less.
        self._hashes: dict[str, str] = {}

    def replace(self, action: Action, secret: str, normalized: str) -> str:
        if action is Action.MASK:
            return self.mask
        if action is Action.LENGTH:
            return f"<{len(secret)} chars>"
        return self.pseudonym(normalized)

    def pseudonym(self, text: str) -> str:
        """Lower-case hex of HMAC(hmac_key, text) (or of the plain digest), cut to ``hash_length`` if set."""
        cached = self._hashes.get(text)
        if cached is None:
            data = text.encode("utf-8", "surrogatepass")
            if self._key is not None:
                digest = hmac.new(self._key, data, self._digest).hexdigest()
            else:
                digest = self._digest(data).hexdigest()
            cached = digest[: self._length]
            if len(self._hashes) >= _CACHE_LIMIT:
                self._hashes.clear()
            self._hashes[text] = cached
        return cached
