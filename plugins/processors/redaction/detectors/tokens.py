"""Credentials: JWTs, bearer tokens, vendor API keys (AWS, GitHub, Slack, Stripe), ``api_key=`` and
``password=`` assignments.

Vendor keys are recognised by their documented prefixes, so random identifiers of the same length are left
alone. The assignment detectors replace the value only, so ``password=****`` still says what was there.
"""

from __future__ import annotations

import re

from .base import Literal, RegexDetector

__all__ = ["API_KEY", "BEARER_TOKEN", "JWT", "PASSWORD"]

# Header and payload are base64url JSON objects, so both start with "eyJ" ('{"'); the signature may be empty.
JWT = RegexDetector(
    name="jwt",
    pattern=re.compile(r"(?<![\w-])eyJ[\w-]{2,}\.eyJ[\w-]{2,}\.[\w-]*", re.ASCII),
    triggers=(Literal("eyJ"),),
)

BEARER_TOKEN = RegexDetector(
    name="bearer_token",
    pattern=re.compile(r"\bbearer[ \t]+(?P<secret>[\w\-.~+/]{8,}=*)", re.ASCII | re.IGNORECASE),
    triggers=(Literal("bearer"),),
    group=("secret",),
)

_VENDOR_KEYS = (
    r"AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,243}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,250}"  # Slack tokens
    r"|[rs]k_live_[A-Za-z0-9]{16,247}"  # Stripe secret and restricted keys
)
_API_KEY_NAMES = r"x-api-key|api[_-]?key|access[_-]?token|auth[_-]?token"
API_KEY = RegexDetector(
    name="api_key",
    pattern=re.compile(
        rf"(?<![\w-])(?P<vendor>{_VENDOR_KEYS})(?![\w-])"
        rf"|\b(?i:{_API_KEY_NAMES})[\"']?[ \t]*[:=][ \t]*[\"']?(?P<assigned>[\w\-.~+/]{{6,}}=*)",
        re.ASCII,
    ),
    triggers=tuple(Literal(text) for text in (
        "akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "k_live_",
        "xoxa-", "xoxb-", "xoxo-", "xoxp-", "xoxr-", "xoxs-",
        "api_key", "api-key", "apikey", "access_token", "access-token", "accesstoken",
        "auth_token", "auth-token", "authtoken")),
    group=("vendor", "assigned"),
)

PASSWORD = RegexDetector(
    name="password",
    pattern=re.compile(
        r"\b(?:password|passwd|pwd)[\"']?[ \t]*[:=][ \t]*[\"']?(?P<secret>[^\s\"'&,;]{1,256})",
        re.ASCII | re.IGNORECASE),
    triggers=(Literal("password"), Literal("passwd"), Literal("pwd")),
    group=("secret",),
)
