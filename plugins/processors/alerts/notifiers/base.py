"""What every notifier shares: its own queue and task, retries with the SDK's backoff (``gateway.Backoff``, the
exporters' ``retry_on_failure`` policy) honouring Retry-After, failure counts, and secrets that never print.

A notifier never blocks the evaluation loop: ``submit`` puts a job on a bounded queue (the oldest job is dropped
and counted when it is full) and a task of its own sends, so a slow or failing receiver costs only its own
notifications.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway import Backoff, ConfigError, Duration, PermanentError, RetryableError, parse_retry_after
from gateway import RetryConfig as BackoffConfig

from ..lifecycle import Notification

__all__ = ["NotifierBase", "RetryConfig", "Secret", "post_json", "redact"]


class Secret(str):
    """A string that prints as <redacted> (repr, logs, config dumps); ``str.__str__`` still gives the value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'" if self else "''"


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), "<redacted>")
    return text


@dataclass(frozen=True)
class RetryConfig:
    #: First wait after a failure; doubles (with jitter) up to max_interval.
    initial_interval: Duration = 1.0
    max_interval: Duration = 30.0
    #: Give up on a notification after this many attempts (counted as failed).
    max_attempts: int = 5

    def backoff(self) -> Backoff:
        """The SDK's backoff with this block's bounds: each wait within ±20% of an interval that doubles."""
        return Backoff(BackoffConfig(initial_interval=self.initial_interval, max_interval=self.max_interval,
                                     multiplier=2.0, randomization_factor=0.2, max_elapsed_time=0.0))

    def validate(self) -> None:
        errors = []
        if self.initial_interval <= 0 or self.max_interval < self.initial_interval:
            errors.append("initial_interval: must be > 0 and <= max_interval")
        if self.max_attempts < 1:
            errors.append("max_attempts: must be >= 1")
        if errors:
            raise ConfigError(errors)


async def post_json(session: aiohttp.ClientSession, url: str, body: Any, timeout: float,
                    headers: dict[str, str] | None = None, ok: Callable[[int, str], bool] | None = None) -> str:
    """POST JSON; 429/5xx/network errors are retryable (Retry-After honoured), other 4xx permanent."""
    try:
        async with session.post(url, json=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            text = await response.text()
            status = response.status
            if status == 429 or status >= 500:
                raise RetryableError(f"HTTP {status}: {text[:200]}",
                                     parse_retry_after(response.headers.get("Retry-After")))
            if status >= 300 or (ok is not None and not ok(status, text)):
                raise PermanentError(f"HTTP {status}: {text[:200]}")
            return text
    except (TimeoutError, aiohttp.ClientError) as exc:
        # aiohttp puts the URL in some messages; the URL may be the secret (Slack), so name only the type
        raise RetryableError(f"{type(exc).__name__}") from None


class NotifierBase(abc.ABC):
    """Subclasses implement ``send(notifications)``; one call per job, raising the errors above."""

    #: Resend a firing alert this often whatever the route's repeat_interval (Alertmanager needs re-posts).
    resend_interval: float | None = None
    #: How long a firing notification stays valid at the receiver (Alertmanager's endsAt horizon).
    valid_for: float = 0.0
    #: Send resolves even on routes with send_resolved false (Alertmanager would otherwise wait for endsAt).
    always_resolve = False
    queue_size = 1000

    def __init__(self, notifier_id: str, config: Any, logger: logging.Logger | logging.LoggerAdapter[Any],
                 stats: Any) -> None:
        self.id = notifier_id
        self.config = config
        self.logger = logger
        self.stats = stats  # NotifierStats: sent / failed / dropped counters
        self._queue: asyncio.Queue[list[Notification]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        #: Waits between retries; tests replace it to run without real sleeping.
        self.sleep: Callable[[float], Any] = asyncio.sleep

    def secrets(self) -> list[str]:
        return []

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"notifier {self.id}")

    def submit(self, notifications: list[Notification]) -> None:
        if not notifications:
            return
        if self._queue.qsize() >= self.queue_size:
            dropped = self._queue.get_nowait()
            self.stats.dropped(self.id, len(dropped))
        self._queue.put_nowait(notifications)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every submitted job was sent or given up (tests, shutdown)."""
        await asyncio.wait_for(self._queue.join(), timeout)

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._deliver(job)
            finally:
                self._queue.task_done()

    async def _deliver(self, job: list[Notification]) -> None:
        retry: RetryConfig = getattr(self.config, "retry", RetryConfig())
        backoff = retry.backoff()
        for attempt in range(1, retry.max_attempts + 1):
            try:
                await self.send(job)
                self.stats.sent(self.id, len(job))
                return
            except PermanentError as exc:
                self._failed(job, str(exc), attempt)
                return
            except RetryableError as exc:
                if attempt == retry.max_attempts:
                    self._failed(job, str(exc), attempt)
                    return
                delay = backoff.next_delay(exc.retry_after)  # the receiver's rate limit wins over our backoff
                self.logger.info("notifier %s: %s; retrying in %.1fs", self.id, redact(str(exc), self.secrets()),
                                 delay)
                await self.sleep(delay)
            except Exception as exc:  # a bug in one notifier must not kill its task
                self._failed(job, f"{type(exc).__name__}: {exc}", attempt)
                return

    def _failed(self, job: list[Notification], reason: str, attempts: int) -> None:
        self.stats.failed(self.id, len(job))
        self.logger.warning("notifier %s: giving up on %d notification(s) after %d attempt(s): %s", self.id,
                            len(job), attempts, redact(reason, self.secrets()))

    @abc.abstractmethod
    async def send(self, notifications: list[Notification]) -> None:
        """Deliver one job; raise ``gateway.RetryableError`` (with the receiver's ``retry_after``, if any) or
        ``gateway.PermanentError`` on failure."""

    async def close(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError, TimeoutError):
                await asyncio.wait_for(self._queue.join(), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
