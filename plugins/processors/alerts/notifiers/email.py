"""E-mail over SMTP (optionally STARTTLS and login): one message per batch. smtplib runs in a worker thread so
the event loop never waits on a mail server."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

from gateway import ConfigError, Duration, PermanentError, RetryableError, split_host_port

from ..lifecycle import Notification, rfc3339
from .base import NotifierBase, RetryConfig

__all__ = ["Config", "EmailNotifier"]


@dataclass(frozen=True)
class Config:
    #: SMTP server host:port.
    smarthost: str = ""
    #: Envelope and header sender.
    sender: str = "otelgw@localhost"
    #: Recipients.
    to: list[str] = field(default_factory=list)
    #: Upgrade the connection with STARTTLS before sending (and before logging in).
    starttls: bool = True
    #: Skip certificate checks on STARTTLS (test servers only).
    insecure_skip_verify: bool = False
    username: str = ""
    #: SMTP password (write it as ${env:SMTP_PASSWORD}); never printed.
    password: str = field(default="", repr=False)
    timeout: Duration = 10.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def validate(self) -> None:
        errors = []
        try:
            split_host_port(self.smarthost)
        except ValueError:
            errors.append("smarthost: must be host:port")
        if not self.to:
            errors.append("to: at least one recipient is needed")
        if errors:
            raise ConfigError(errors)


class EmailNotifier(NotifierBase):
    def secrets(self) -> list[str]:
        return [self.config.password]

    def message(self, notifications: list[Notification]) -> EmailMessage:
        firing = [n for n in notifications if n.status == "firing"]
        resolved = [n for n in notifications if n.status == "resolved"]
        names = sorted({n.labels.get("alertname", "alert") for n in notifications})
        tag = f"FIRING:{len(firing)}" if firing else f"RESOLVED:{len(resolved)}"
        msg = EmailMessage()
        msg["Subject"] = f"[{tag}] {', '.join(names)}"
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.to)
        lines = []
        for n in notifications:
            lines.append(f"[{n.status.upper()}] {n.labels.get('alertname', '')} ({n.labels.get('severity', '')})")
            lines.append(f"  {n.summary}")
            lines.append(f"  value: {n.value}  since: {rfc3339(n.starts_at)}")
            lines += [f"  {k}: {v}" for k, v in sorted(n.labels.items()) if k not in ("alertname", "severity")]
            lines += [f"  {k}: {v}" for k, v in sorted(n.annotations.items()) if k != "summary"]
            lines.append("")
        msg.set_content("\n".join(lines))
        return msg

    def _send_sync(self, msg: EmailMessage) -> None:
        host, port = split_host_port(self.config.smarthost)
        try:
            with smtplib.SMTP(host, port, timeout=self.config.timeout) as smtp:
                if self.config.starttls:
                    context = ssl.create_default_context()
                    if self.config.insecure_skip_verify:
                        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                    smtp.starttls(context=context)
                if self.config.username:
                    smtp.login(self.config.username, self.config.password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            # 4xx is the server asking us to come back later; 5xx will not change on retry
            error = RetryableError if 400 <= exc.smtp_code < 500 else PermanentError
            raise error(f"SMTP {exc.smtp_code}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            # every recipient refused: permanent when every refusal is a 5xx, as for any other SMTP reply
            codes = sorted({code for code, _ in exc.recipients.values()})
            error = PermanentError if all(code >= 500 for code in codes) else RetryableError
            raise error(f"SMTP recipients refused ({', '.join(map(str, codes))})") from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentError("the server does not offer STARTTLS (set starttls: false)") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise RetryableError(type(exc).__name__) from None

    async def send(self, notifications: list[Notification]) -> None:
        await asyncio.to_thread(self._send_sync, self.message(notifications))
