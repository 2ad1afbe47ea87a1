"""mail.backends: the one SMTP connection set-up (security mode, timeout, login)."""

from __future__ import annotations

import smtplib
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from csss_fhir.mail import outbox
from csss_fhir.mail.backends import SmtpBackend, smtp_connection
from tests.servers import Inbox, free_port


class Logins:
    """aiosmtpd authenticator that accepts one user and remembers who tried."""

    def __init__(self) -> None:
        self.seen: list[tuple[bytes, bytes]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        self.seen.append((auth_data.login, auth_data.password))
        accepted = auth_data.login == b"mailer" and auth_data.password == b"pw"
        return AuthResult(success=accepted, handled=False)  # aiosmtpd answers 235 or 535


@pytest.fixture
def server():
    inbox, logins, port = Inbox(), Logins(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=logins,
                            auth_require_tls=False)
    controller.start()
    yield inbox, logins, port
    controller.stop()


def smtp_settings(settings, port: int, **overrides):
    return replace(settings, **{"mail_backend": "smtp", "smtp_host": "127.0.0.1",
                                "smtp_port": port, "smtp_security": "none",
                                "smtp_timeout_seconds": 5.0, **overrides})


def test_the_backend_logs_in_as_smtp_user_and_sends(server, settings):
    inbox, logins, port = server
    message = outbox.compose(sender="csss@test.local", recipient="p@test.local",
                             subject="Your report", text="Hello")
    backend = SmtpBackend(smtp_settings(settings, port, smtp_user="mailer", smtp_password="pw"))
    backend.send("m-1", message.as_bytes())
    assert logins.seen == [(b"mailer", b"pw")]
    assert [m["Subject"] for m in inbox.to("p@test.local")] == ["Your report"]


def test_no_smtp_user_means_no_login(server, settings):
    _, logins, port = server
    with smtp_connection(smtp_settings(settings, port)) as client:
        assert client.noop()[0] == 250
    assert logins.seen == []


def test_wrong_credentials_are_smtplib_errors_for_the_caller_to_judge(server, settings):
    _, _, port = server
    with pytest.raises(smtplib.SMTPAuthenticationError), smtp_connection(
            smtp_settings(settings, port, smtp_user="mailer", smtp_password="wrong")):
        pass


def test_starttls_is_required_when_configured_and_refused_when_not_offered(server, settings):
    _, logins, port = server
    with pytest.raises(smtplib.SMTPNotSupportedError), smtp_connection(
            smtp_settings(settings, port, smtp_security="starttls", smtp_user="mailer",
                          smtp_password="pw")):
        pass
    assert logins.seen == []  # the password never crosses a plain connection


def test_the_timeout_defaults_to_smtp_timeout_and_can_be_shortened(server, settings):
    _, _, port = server
    configured = smtp_settings(settings, port, smtp_timeout_seconds=7.0)
    with smtp_connection(configured) as client:
        assert client.timeout == 7.0
    with smtp_connection(configured, timeout=1.5) as client:
        assert client.timeout == 1.5
