"""The e-mail notifier against a real SMTP server (aiosmtpd) on loopback: STARTTLS, login, the message itself."""

from __future__ import annotations

import socket
import ssl
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .helpers import gauge, make_processor
from .test_notifiers import drain, rule

CERTS = Path(__file__).resolve().parents[2] / "exporters" / "otlp_grpc" / "testdata"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.reject_recipients = False
        self.refusals = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd handler hook
        if self.reject_recipients:
            self.refusals += 1
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"ops", b"hunter2")
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTS / "localhost.crt", CERTS / "localhost.key")
    with socket.socket() as probe:  # aiosmtpd's start-up check needs a real port, not 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    try:
        yield mailbox, f"127.0.0.1:{port}"
    finally:
        controller.stop()


def config(address: str, password: str = "hunter2", attempts: int = 1) -> dict:
    return {"rules": [rule()],
            "notifiers": {"email/oncall": {"smarthost": address, "sender": "otelgw@example.com",
                                           "to": ["oncall@example.com", "lead@example.com"],
                                           "username": "ops", "password": password,
                                           "insecure_skip_verify": True,
                                           "retry": {"max_attempts": attempts, "initial_interval": "10ms"}}}}


async def test_firing_and_resolved_mails_over_starttls_with_login(smtp_server):
    mailbox, address = smtp_server
    processor, _, clock = make_processor(config(address))
    await processor.start(None)
    try:
        await processor.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
        processor.evaluate()
        await drain(processor)
        clock.advance(30)
        await processor.consume_metrics(gauge("q", [({"queue": "billing"}, 2)]))
        processor.evaluate()
        await drain(processor)
    finally:
        await processor.shutdown()
    assert [(sender, rcpts) for sender, rcpts, _ in mailbox.messages] == [
        ("otelgw@example.com", ["oncall@example.com", "lead@example.com"])] * 2
    firing, resolved = (message_from_bytes(raw) for _, _, raw in mailbox.messages)
    assert firing["Subject"] == "[FIRING:1] QueueDepth"
    assert firing["To"] == "oncall@example.com, lead@example.com"
    body = firing.get_payload()
    assert "[FIRING] QueueDepth (critical)" in body and "queue billing at 25" in body
    assert "runbook_url: https://runbooks.example/queue" in body
    assert resolved["Subject"] == "[RESOLVED:1] QueueDepth"


async def test_a_permanent_refusal_is_counted_not_retried_and_the_password_never_logged(smtp_server, caplog):
    mailbox, address = smtp_server
    mailbox.reject_recipients = True
    processor, _, _ = make_processor(config(address, password="hunter2", attempts=3))
    await processor.start(None)
    try:
        await processor.consume_metrics(gauge("q", [({"queue": "billing"}, 25)]))
        processor.evaluate()
        await drain(processor)
    finally:
        await processor.shutdown()
    assert mailbox.messages == []
    assert mailbox.refusals == 2  # one attempt (two recipients): a 5xx refusal is never retried
    registry = processor.settings.telemetry.registry
    assert registry.get_sample_value("otelgw_alerts_notifications_total", {
        "processor": "alerts", "notifier": "email/oncall", "outcome": "failed"}) == 1
    assert "hunter2" not in caplog.text
    assert "hunter2" not in repr(processor.notifiers["email/oncall"].config)
