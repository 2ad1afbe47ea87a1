"""Delivery backends: `.eml` files (development default) and SMTP."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from csss_fhir.settings import Settings


class DeliveryError(Exception):
    """Delivery failed; `permanent` failures are not retried, and `uncertain` ones (lost
    after the body was handed over: the server may have it) are not retried blindly."""

    def __init__(self, message: str, *, permanent: bool, uncertain: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain


def _no_hook() -> None:
    """`before_data` when the caller records nothing."""


class FileBackend:
    """Writes each message as `<outbox>/<id>.eml`; delivering one id twice rewrites one file."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message_id: str, raw: bytes,
             before_data: Callable[[], None] = _no_hook) -> None:
        before_data()
        target = self.directory / f"{message_id}.eml"
        tmp = target.with_suffix(".tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(raw)
            tmp.replace(target)
        except OSError as err:  # a full or read-only disk: retried later like a down server
            raise DeliveryError(f"cannot write to the mail folder ({type(err).__name__}); "
                                "check that it is writable and has space", permanent=False
                                ) from err


@contextmanager
def smtp_connection(settings: Settings, *, timeout: float | None = None,
                    ) -> Iterator[smtplib.SMTP]:
    """Connect to SMTP_HOST as SMTP_SECURITY says, log in when SMTP_USER is set, and
    close the connection on leaving the block.

    `ssl` is TLS from the first byte (port 465), `starttls` upgrades a plain connection
    (port 587), `none` stays plain (a relay on the same host or network). `timeout` (default
    SMTP_TIMEOUT) applies to each operation. The one place SMTP connections are set up: the
    backend sends through it and `csss check` probes with it.

    Raises:
        OSError, smtplib.SMTPException: as smtplib raises them; callers decide what they mean.
    """
    timeout = settings.smtp_timeout_seconds if timeout is None else timeout
    if settings.smtp_security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                                timeout=timeout,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()  # the server's capabilities may change once the channel is secure
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password or "")
        yield client


class SmtpBackend:
    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message_id: str, raw: bytes,
             before_data: Callable[[], None] = _no_hook) -> None:
        """Send one message: MAIL, RCPT, then DATA.

        `before_data` runs (and records it) just before DATA. From then on a timeout or a
        dropped connection raises an `uncertain` DeliveryError: the server may have the
        message. A reply code is a plain refusal; once the server accepted the message, a
        failing QUIT changes nothing.
        """
        message = BytesParser(policy=policy.SMTP).parsebytes(raw)
        sender = message["From"].addresses[0].addr_spec
        recipients = [a.addr_spec for a in message["To"].addresses]
        body = message.as_bytes(policy=policy.SMTP)
        phase = "envelope"
        try:
            with smtp_connection(self.settings) as client:
                code, reply = client.mail(sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, sender)
                refused = {}
                for recipient in recipients:
                    code, reply = client.rcpt(recipient)
                    if code not in (250, 251):
                        refused[recipient] = (code, reply)
                if refused:
                    raise smtplib.SMTPRecipientsRefused(refused)
                phase = "data"
                before_data()
                client.data(body)
                phase = "accepted"
        except smtplib.SMTPResponseException as err:
            if phase == "accepted":
                return
            raise DeliveryError(f"SMTP {err.smtp_code}", permanent=500 <= err.smtp_code < 600
                                ) from err
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            raise DeliveryError(f"recipient refused (SMTP {codes})",
                                permanent=all(500 <= c < 600 for c in codes)) from err
        except (OSError, smtplib.SMTPException) as err:
            if phase == "accepted":
                return
            if phase == "data":
                raise DeliveryError(
                    f"no answer to DATA ({type(err).__name__}; SMTP_TIMEOUT="
                    f"{self.settings.smtp_timeout_seconds:g} s): the server may have the "
                    "message, so it is not retried automatically; an administrator may "
                    "resend it", permanent=False, uncertain=True) from err
            raise DeliveryError(f"SMTP server unreachable: {type(err).__name__}",
                                permanent=False) from err


def make_backend(settings: Settings, instance_path: Path) -> FileBackend | SmtpBackend:
    if settings.mail_backend == "smtp":
        return SmtpBackend(settings)
    return FileBackend(instance_path / "outbox")


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]
