"""HTTP side of a scrape: one aiohttp session per job, Prometheus' request headers, auth, TLS, and a body cap.

The body is read in chunks and the scrape fails as soon as it passes ``body_size_limit`` (after gzip is undone,
so a small compressed bomb is caught too): memory per scrape never exceeds the limit.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from pathlib import Path

import aiohttp

from .config import ScrapeConfig, TLSConfig
from .targets import Target
from .translate import ScrapeError

__all__ = ["ACCEPT", "Fetcher"]

#: Prometheus' own Accept header for OpenMetrics first, then the text format.
ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
          "text/plain;version=0.0.4;q=0.3,*/*;q=0.2")
_TLS_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                 "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CHUNK = 256 * 1024


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file or None)
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = _TLS_VERSIONS.get(tls.min_version or "TLS12", ssl.TLSVersion.TLSv1_2)
    return context


def _read_secret(path: str) -> str:
    return Path(path).read_text().rstrip("\n")


class Fetcher:
    """Fetches targets of one scrape config."""

    def __init__(self, scrape: ScrapeConfig, user_agent: str) -> None:
        self.scrape = scrape
        self.body_limit = scrape.body_limit()
        #: Without metric relabeling every sample line counts, so a body over sample_limit is refused as it arrives.
        self.sample_limit = 0 if scrape.metric_relabel_configs else scrape.sample_limit
        self.user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            ssl_context = _ssl_context(self.scrape.tls_config) if self.scrape.scheme == "https" or (
                self.scrape.tls_config != TLSConfig()) else None
            connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True, limit=0)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        return self._session

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "User-Agent": self.user_agent,
                   "X-Prometheus-Scrape-Timeout-Seconds": f"{target.timeout:g}"}
        headers["Accept-Encoding"] = "gzip" if self.scrape.enable_compression else "identity"
        auth, basic = self.scrape.authorization, self.scrape.basic_auth
        if auth is not None:
            credentials = _read_secret(auth.credentials_file) if auth.credentials_file else auth.credentials
            headers["Authorization"] = f"{auth.type or 'Bearer'} {credentials}"
        elif basic is not None:
            password = _read_secret(basic.password_file) if basic.password_file else basic.password
            token = base64.b64encode(f"{basic.username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    async def fetch(self, target: Target) -> tuple[str, str, int]:
        """(body text, content type, body bytes); raises ``ScrapeError`` with a cause on any failure."""
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that arrives as the
            # fetch completes, and a scrape loop that survives its cancellation makes shutdown wait forever.
            async with asyncio.timeout(target.timeout):
                return await self._fetch(target)
        except TimeoutError:
            raise ScrapeError("timeout", f"scrape timed out after {target.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise ScrapeError("http_error", f"request failed: {exc}") from None
        except OSError as exc:  # a secret file that cannot be read
            raise ScrapeError("http_error", f"cannot prepare the request: {exc}") from None

    async def _fetch(self, target: Target) -> tuple[str, str, int]:
        session = self._session_for_loop()
        async with session.get(target.url, headers=self._headers(target), allow_redirects=True) as response:
            if response.status != 200:
                raise ScrapeError("http_status", f"server returned HTTP status {response.status} {response.reason}")
            declared = response.content_length
            if declared is not None and declared > self.body_limit and "Content-Encoding" not in response.headers:
                raise ScrapeError("body_size_limit", f"body of {declared} bytes exceeds body_size_limit "
                                                     f"({self.body_limit} bytes)")
            chunks: list[bytes] = []
            size = 0
            lines = _SampleLines() if self.sample_limit else None
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > self.body_limit:
                    raise ScrapeError("body_size_limit",
                                      f"body exceeds body_size_limit ({self.body_limit} bytes)")
                if lines is not None and lines.add(chunk) > self.sample_limit:
                    raise ScrapeError("sample_limit", f"sample limit exceeded: more than {self.sample_limit} "
                                                      f"samples")
                chunks.append(chunk)
            body = b"".join(chunks)
            del chunks
            content_type = response.headers.get("Content-Type", "text/plain")
        try:
            return body.decode("utf-8"), content_type, size
        except UnicodeDecodeError as exc:
            raise ScrapeError("parse_error", f"body is not UTF-8: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _SampleLines:
    """Counts complete lines that are neither comments nor blank, across chunk boundaries, as they arrive."""

    def __init__(self) -> None:
        self.count = 0
        self._open = b""  # the first byte of the line still open at the end of the last chunk ("" if none yet)

    def add(self, chunk: bytes) -> int:
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            self._open = self._open or chunk[:1]
            return self.count
        first = self._open or pieces[0][:1]
        self.count += first not in (b"", b"#")
        self.count += sum(1 for line in pieces[1:-1] if line and line[0] != 0x23)  # 0x23: '#'
        self._open = pieces[-1][:1]
        return self.count
