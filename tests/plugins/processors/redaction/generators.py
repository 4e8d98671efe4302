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
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span

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


# ------------------------------------------------------------------ requests as a sender may write them
# For the twins of redaction's item split and splice (items.py, gateway/helpers/_spanscan.c): requests written
# field by field, with envelopes holding an address, unknown fields at every level, repeated and present-but-
# empty envelopes, empty items, any field order.

EMAIL = "jane.doe@example.com"


def varint(value: int) -> bytes:
    out = b""
    while True:
        out += bytes([value & 0x7F | (0x80 if value > 0x7F else 0)])
        value >>= 7
        if not value:
            return out


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


TEXT = st.sampled_from(["", "GET /a", "db.query", "x" * 200, f"mail {EMAIL}", "ünïcode"])
#: Fields no schema here knows (a varint, a fixed32, a length-delimited one), and field 2 or 1 with another
#: wire type, which a parser keeps as an unknown field too.
UNKNOWN = st.sampled_from([b"\x48\x05", b"\x7d" + bytes(4), field(14, b"unknown text"), field(14, EMAIL.encode()),
                           b"\x10\x07", b"\x08\x01"])


@st.composite
def item_bytes(draw: Any, logs: bool) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return b""  # an empty item: a span or record with every field at its default
    attributes = [KeyValue(key=draw(st.sampled_from(["a", "user.email", "http.route"])),
                           value=AnyValue(string_value=draw(TEXT))) for _ in range(draw(st.integers(0, 3)))]
    if logs:
        record = LogRecord(time_unix_nano=draw(st.integers(min_value=0, max_value=2**64 - 1)), attributes=attributes)
        record.body.string_value = draw(TEXT)
        data = record.SerializeToString()
    else:
        data = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name=draw(TEXT),
                    attributes=attributes).SerializeToString()
    return data + (draw(UNKNOWN) if draw(st.integers(0, 4)) == 0 else b"")


def envelope(draw: Any, scope: bool) -> list[bytes]:
    """Zero, one or two occurrences of the resource or scope field (the parser merges two), maybe empty, a
    scope's name and version in either order."""
    out = []
    for _ in range(draw(st.integers(0, 2))):
        kv = KeyValue(key=draw(st.sampled_from(["service.name", "owner"])), value=AnyValue(string_value=draw(TEXT)))
        attributes = field(3 if scope else 1, kv.SerializeToString())
        choices = [b"", attributes] + ([field(1, b"lib") + field(2, b"1.0"), field(2, b"1.0") + field(1, b"lib")]
                                       if scope else [])
        out.append(field(1, draw(st.sampled_from(choices))))
    return out


@st.composite
def wire_requests(draw: Any, logs: bool) -> bytes:
    """A traces (logs) request's bytes, written field by field in any order."""
    resources = []
    for _ in range(draw(st.integers(0, 3))):
        scopes = []
        for _ in range(draw(st.integers(0, 3))):
            fields = [field(2, draw(item_bytes(logs))) for _ in range(draw(st.integers(0, 6)))]
            extra = envelope(draw, True) + [field(3, b"https://schema/1")] * draw(st.integers(0, 1))
            extra += draw(st.lists(UNKNOWN, max_size=2))
            for part in extra:  # envelope fields anywhere between the items
                fields.insert(draw(st.integers(0, len(fields))), part)
            scopes.append(field(2, b"".join(fields)))
        extra = envelope(draw, False) + [field(3, b"https://schema/2")] * draw(st.integers(0, 1))
        extra += draw(st.lists(UNKNOWN, max_size=2))
        for part in extra:
            scopes.insert(draw(st.integers(0, len(scopes))), part)
        resources.append(field(1, b"".join(scopes)))
    for part in draw(st.lists(st.sampled_from([field(5, EMAIL.encode()), b"\x10\x01"]), max_size=1)):
        resources.insert(draw(st.integers(0, len(resources))), part)
    return b"".join(resources)
