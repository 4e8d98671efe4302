"""What every admin command (``alerts``, ``top``, ``tap``) shares: the endpoint and token options and requests."""

from __future__ import annotations

import argparse
import collections
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway._host.admin import default_token_file

__all__ = ["AdminClient", "add_admin_options", "admin_token", "alerts_summary"]

DEFAULT_ADMIN = "http://127.0.0.1:13134"


def add_admin_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """``--admin``, ``--token`` and ``--token-file``. ``suppress``: for a subcommand's copy of the options, so
    they work before or after the subcommand and the later one wins only when given."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--admin", default=argparse.SUPPRESS if suppress else DEFAULT_ADMIN, metavar="URL",
                        help=f"the gateway's admin endpoint (default {DEFAULT_ADMIN})")
    parser.add_argument("--token", default=default,
                        help="bearer token (default: $OTELGW_ADMIN_TOKEN, else the token file the gateway wrote)")
    parser.add_argument("--token-file", default=default, metavar="FILE",
                        help="file holding the token (default: <state dir>/admin-<port>.token, as the gateway "
                             "writes it when service::admin::token is not set)")


def admin_token(admin_url: str, token: str | None = None, token_file: str | None = None) -> str:
    """The token for the admin endpoint at ``admin_url``: given, else $OTELGW_ADMIN_TOKEN, else the file the
    gateway wrote (``--token-file``, or the default file for the URL's port). Empty when there is none."""
    if token is not None:
        return token
    if os.environ.get("OTELGW_ADMIN_TOKEN"):
        return os.environ["OTELGW_ADMIN_TOKEN"]
    if token_file is not None:
        path = Path(token_file)
    else:
        port = urlsplit(admin_url).port
        if port is None:
            return ""
        path = default_token_file(port)
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class AdminClient:
    def __init__(self, args: argparse.Namespace, command: str) -> None:
        self.url = getattr(args, "admin", DEFAULT_ADMIN).rstrip("/")
        self.token = admin_token(self.url, getattr(args, "token", None), getattr(args, "token_file", None))
        self.command = command

    def _request(self, method: str, path: str, body: Any = None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        return request

    def _fail(self, exc: Exception) -> SystemExit:
        if isinstance(exc, urllib.error.HTTPError):
            try:
                message = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                message = exc.reason
            hint = ""
            if exc.code == 401 and not self.token:
                hint = (" (no token found: pass --token or --token-file, or set OTELGW_ADMIN_TOKEN; a gateway "
                        "without service::admin::token writes one to <state dir>/admin-<port>.token)")
            return SystemExit(f"otelgw {self.command}: {exc.code}: {message}{hint}")
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return SystemExit(f"otelgw {self.command}: cannot reach {self.url}: {reason}")

    def call(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        try:
            with urllib.request.urlopen(self._request(method, path, body), timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError) as exc:
            raise self._fail(exc) from None

    def stream(self, path: str) -> Iterator[Any]:
        """The JSON objects of an NDJSON answer, as they arrive."""
        try:
            response = urllib.request.urlopen(self._request("GET", path), timeout=3600)
        except (urllib.error.URLError, OSError) as exc:
            raise self._fail(exc) from None
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line)


def alerts_summary(alerts: list[dict[str, Any]]) -> str:
    """``3 alerts: 2 firing (critical 1, high 1), 1 pending (warning 1)``; ``otelgw top`` and ``otelgw alerts``."""
    by_state: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for a in alerts:
        by_state[a["state"]][a["severity"]] += 1
    parts = []
    for state in ("firing", "pending", "resolved"):
        if by_state.get(state):
            counts = ", ".join(f"{s} {n}" for s, n in sorted(by_state[state].items()))
            parts.append(f"{sum(by_state[state].values())} {state} ({counts})")
    silenced = sum(1 for a in alerts if a.get("silenced"))
    text = f"{len(alerts)} alerts" + (": " + ", ".join(parts) if parts else "")
    return text + (f"; {silenced} silenced" if silenced else "")
