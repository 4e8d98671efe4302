"""Hypothesis strategies: synthetic secrets of every detector in every supported format, and places to put them.

Each secret strategy draws ``(detector, text, secret)``: ``text`` is what an application would send and
``secret`` the part that must not leave the gateway.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import string
from typing import Any

from hypothesis import strategies as st

from plugins.processors.redaction.detectors.payment import IBAN_LENGTHS, luhn_valid

Secret = tuple[str, str, str]
DIGITS = string.digits
ALNUM = string.ascii_letters + string.digits


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=n, max_size=n)


def _join_groups(digits: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        out.append(digits[i:i + size])
        i += size
    return sep.join(part for part in out if part)


@st.composite
def emails(draw: Any) -> Secret:
    local = draw(st.text(ALNUM + "._%+-", min_size=1, max_size=16).filter(lambda s: s[0] not in ".-+%"))
    if draw(st.booleans()):
        local += draw(st.sampled_from(["é", "ü", "ø"]))
    labels = draw(st.lists(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
                           min_size=1, max_size=3))
    tld = draw(st.from_regex(r"[a-z]{2,6}", fullmatch=True))
    address = f"{local}@{'.'.join(labels)}.{tld}"
    if draw(st.booleans()):
        address = address.upper() if draw(st.booleans()) else address.title()
    return "email", address, address


@st.composite
def phones(draw: Any) -> Secret:
    kind = draw(st.sampled_from(["intl", "nanp", "trunk_groups", "trunk_pairs", "trunk_bare"]))
    if kind == "intl":
        country = str(draw(st.integers(1, 999)))
        subscriber = draw(st.integers(8 - len(country), 15 - len(country)).flatmap(_digits))
        sep = draw(st.sampled_from([" ", "-", ".", ""]))
        sizes = draw(st.lists(st.integers(1, 4), min_size=4, max_size=8))
        text = f"+{country}{sep}{_join_groups(subscriber, [*sizes, 15], sep)}"
    elif kind == "nanp":
        a, b, c = draw(_digits(3)), draw(_digits(3)), draw(_digits(4))
        text = draw(st.sampled_from([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}",
                                     f"({a}) {b} {c}"]))
    elif kind == "trunk_groups":
        area = "0" + draw(st.integers(1, 9).map(str)) + draw(_digits(1))
        sep = draw(st.sampled_from([" ", ".", "-", "/"]))
        text = f"{area}{sep}{draw(_digits(4))}{sep}{draw(_digits(4))}"
    elif kind == "trunk_pairs":
        sep = draw(st.sampled_from([" ", ".", "-"]))
        pairs = ["0" + draw(st.integers(1, 9).map(str))] + [draw(_digits(2)) for _ in range(4)]
        text = sep.join(pairs)
    else:
        text = "0" + draw(st.integers(1, 9).map(str)) + draw(st.integers(8, 9).flatmap(_digits))
    return "phone", text, text


_CARDS = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("2720", 16), ("34", 15), ("37", 15),
          ("6011", 16), ("65", 19), ("3528", 16), ("36", 14), ("62", 19)]


@st.composite
def cards(draw: Any) -> Secret:
    prefix, length = draw(st.sampled_from(_CARDS))
    body = prefix + draw(_digits(length - len(prefix) - 1))
    number = next(body + d for d in DIGITS if luhn_valid(body + d))
    sep = draw(st.sampled_from(["", " ", "-"]))
    if not sep:
        text = number
    elif length in (16, 19, 13):
        text = _join_groups(number, [4, 4, 4, 4, 3], sep) if length != 13 else _join_groups(number, [4, 4, 5], sep)
    else:
        text = _join_groups(number, [4, 6, 5], sep)
    if length == 13 and sep:
        text = number  # 4-4-5 is not a card grouping
    return "credit_card", text, text


@st.composite
def ibans(draw: Any) -> Secret:
    country = draw(st.sampled_from(sorted(IBAN_LENGTHS)))
    bban_length = IBAN_LENGTHS[country] - 4
    if bban_length >= 14 and draw(st.booleans()):
        bban = draw(st.text(string.ascii_uppercase, min_size=4, max_size=4)) + draw(_digits(bban_length - 4))
    else:
        bban = draw(_digits(bban_length))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    text = compact if draw(st.booleans()) else " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))
    return "iban", text, text


@st.composite
def ssns(draw: Any) -> Secret:
    area = draw(st.integers(1, 899).filter(lambda a: a != 666))
    text = f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"
    return "us_ssn", text, text


@st.composite
def ipv4s(draw: Any) -> Secret:
    text = ".".join(str(draw(st.integers(0, 255))) for _ in range(4))
    return "ipv4", text, text


@st.composite
def ipv6s(draw: Any) -> Secret:
    address = ipaddress.IPv6Address(draw(st.integers(1, 2**128 - 1)))
    text = address.exploded if draw(st.booleans()) else str(address)
    return "ipv6", text, text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@st.composite
def jwts(draw: Any) -> Secret:
    header = _b64(json.dumps({"alg": draw(st.sampled_from(["HS256", "RS256", "none"])), "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"sub": draw(st.text(ALNUM, min_size=1, max_size=12)),
                               "iat": draw(st.integers(0, 2**31))}).encode())
    signature = _b64(draw(st.binary(min_size=0, max_size=32)))
    text = f"{header}.{payload}.{signature}"
    return "jwt", text, text


@st.composite
def bearer_tokens(draw: Any) -> Secret:
    token = draw(st.text(ALNUM + "-._~+/", min_size=8, max_size=40).filter(lambda t: t[0].isalnum()))
    word = draw(st.sampled_from(["Bearer", "bearer", "BEARER"]))
    return "bearer_token", f"{word} {token}", token


@st.composite
def api_keys(draw: Any) -> Secret:
    kind = draw(st.sampled_from(["aws", "github", "slack", "stripe", "assigned"]))
    if kind == "aws":
        text = "AKIA" + draw(st.text(string.ascii_uppercase + DIGITS, min_size=16, max_size=16))
    elif kind == "github":
        text = draw(st.sampled_from(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])) + draw(
            st.text(ALNUM, min_size=36, max_size=36))
    elif kind == "slack":
        tail = draw(st.text(ALNUM, min_size=24, max_size=24))
        text = f"xox{draw(st.sampled_from('abposr'))}-{draw(_digits(12))}-{tail}"
    elif kind == "stripe":
        text = draw(st.sampled_from(["sk_live_", "rk_live_"])) + draw(st.text(ALNUM, min_size=24, max_size=32))
    else:
        value = draw(st.text(ALNUM, min_size=8, max_size=24))
        name = draw(st.sampled_from(["api_key", "API-KEY", "apikey", "x-api-key", "access_token", "auth-token"]))
        sep = draw(st.sampled_from(["=", ": ", "="]))
        return "api_key", f"{name}{sep}{value}", value
    return "api_key", text, text


@st.composite
def passwords(draw: Any) -> Secret:
    value = draw(st.text(ALNUM + "!#$%*-_", min_size=6, max_size=20).filter(lambda v: v[0].isalnum()))
    name = draw(st.sampled_from(["password", "Password", "passwd", "pwd"]))
    return "password", f"{name}={value}", value


SECRETS: dict[str, st.SearchStrategy[Secret]] = {
    "email": emails(), "phone": phones(), "credit_card": cards(), "iban": ibans(), "us_ssn": ssns(),
    "ipv4": ipv4s(), "ipv6": ipv6s(), "jwt": jwts(), "bearer_token": bearer_tokens(), "api_key": api_keys(),
    "password": passwords(),
}
any_secret = st.one_of(*SECRETS.values())

#: Text around a secret inside a value: separators a detector accepts as a boundary.
context = st.tuples(
    st.sampled_from(["", "note ", "call: ", "(", "user wrote\n", "x, "]),
    st.sampled_from(["", " end", ")", ", thanks", ".", "\t"]),
)
