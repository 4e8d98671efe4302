"""IP addresses: dotted-quad IPv4 and IPv6 (full, compressed, with an embedded IPv4 or a zone)."""

from __future__ import annotations

import ipaddress
import re

from .base import RegexDetector, Search

__all__ = ["IPV4", "IPV6"]

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)", re.ASCII)

IPV4 = RegexDetector(
    name="ipv4",
    pattern=_IPV4,
    # a.b.c.d holds ".b.c."
    triggers=(Search(re.compile(rb"\.[0-9]{1,3}\.[0-9]{1,3}\.")),),
)

# Candidates: hex groups joined by colons, optionally ending in a dotted quad and a zone; ipaddress decides.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z]+)?"
    r"(?![\w:]|\.\d)",
    re.ASCII,
)
_HEX = re.compile(r"[0-9A-Fa-f]", re.ASCII)


def _ipv6_accept(match: re.Match[str]) -> bool:
    text = match.group().split("%", 1)[0]
    if _HEX.search(text) is None:
        return False  # a bare "::" is more often C++ or Perl than the unspecified address
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


IPV6 = RegexDetector(
    name="ipv6",
    pattern=_IPV6,
    # Any address has two colons with at most four hex digits between them.
    triggers=(Search(re.compile(rb":[0-9A-Fa-f]{0,4}:")),),
    accept=_ipv6_accept,
    normalizer=lambda secret: str(ipaddress.IPv6Address(secret.split("%", 1)[0])),
)
