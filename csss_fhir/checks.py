"""`csss check`: verify the configuration, database, storage, mail, model and background jobs
(broker and workers) before start.

Each check reports what it found without secrets (no passwords, no full database URL) and
the command exits non-zero when any check fails, so an orchestrator can gate a deployment
on it (`csss check && gunicorn ...`).
"""

from __future__ import annotations

import os
import smtplib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask
from flask.cli import ScriptInfo

from csss_fhir.errors import ConfigurationError
from csss_fhir.mail.backends import smtp_connection

SMTP_CHECK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str


class CheckFailed(Exception):
    """A check found a problem; the message says what to fix."""


def check_database(app: Flask) -> str:
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from csss_fhir.migrate import _config
    from csss_fhir.models import db

    with app.app_context():
        engine = db.engine
        where = engine.url.render_as_string(hide_password=True)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                current = set(MigrationContext.configure(connection).get_current_heads())
                heads = set(ScriptDirectory.from_config(_config(connection)).get_heads())
        except Exception as err:
            raise CheckFailed(f"cannot connect to {where} ({type(err).__name__}); "
                              "check DATABASE_URL and that the server is up") from err
        finally:
            engine.dispose()
    if current != heads:
        missing = ", ".join(sorted(heads - current)) or "-"
        raise CheckFailed(f"{where}: schema at {sorted(current) or 'nothing'}, code expects "
                          f"{sorted(heads)} (missing {missing}); run `csss db upgrade`")
    return f"{where}, migrations at head {', '.join(sorted(heads))}"


def _writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=directory, prefix=".csss-check-")
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as err:
        raise CheckFailed(f"{directory} is not writable ({type(err).__name__})") from err


def check_storage(app: Flask) -> str:
    from csss_fhir.storage import StorageError

    try:
        return app.extensions["csss"].store.check()
    except StorageError as err:
        raise CheckFailed(str(err)) from err


def check_mail(app: Flask) -> str:
    svc = app.extensions["csss"]
    s = svc.settings
    if s.mail_backend == "file":
        directory = svc.mail.directory
        _writable(directory)
        return f"file backend: {directory} is writable (no e-mail leaves this machine)"
    timeout = min(s.smtp_timeout_seconds, SMTP_CHECK_TIMEOUT)
    where = f"{s.smtp_host}:{s.smtp_port}"
    try:
        with smtp_connection(s, timeout=timeout) as client:
            client.noop()
    except smtplib.SMTPAuthenticationError as err:
        raise CheckFailed(f"SMTP {where} refused SMTP_USER's credentials "
                          f"({err.smtp_code})") from err
    except smtplib.SMTPNotSupportedError as err:
        raise CheckFailed(f"SMTP {where} does not offer STARTTLS; set SMTP_SECURITY") from err
    except (OSError, smtplib.SMTPException) as err:
        raise CheckFailed(f"cannot reach SMTP {where} within {timeout:g} s "
                          f"({type(err).__name__}); check SMTP_HOST, SMTP_PORT, "
                          "SMTP_SECURITY") from err
    login = ", logged in" if s.smtp_user else ""
    return f"SMTP {where} answered ({s.smtp_security}{login})"


def check_model(app: Flask) -> str:
    try:
        classifier = app.extensions["csss"].classifier.get()
    except Exception as err:
        raise CheckFailed(f"the model does not load: {err}; check MODEL_PATH") from err
    meta = classifier.metadata
    return f"{meta.get('name', 'classifier')} {meta.get('version', '?')} loads"


def check_jobs(app: Flask) -> str:
    """Without a broker, jobs run in the app; with one, it must answer and so must a worker."""
    s = app.extensions["csss"].settings
    if s.jobs_runner != "celery":
        return f"no broker: jobs run {s.jobs_runner} in each app process"
    from csss_fhir.jobs.celery_app import broker_answers, make_celery, workers_answering

    celery = make_celery(app)
    where = _without_password(s.celery_broker_url)
    try:
        broker_answers(celery)
    except Exception as err:
        raise CheckFailed(f"the broker {where} does not answer ({type(err).__name__}); "
                          "check CELERY_BROKER_URL and that Redis is up") from err
    workers = workers_answering(celery)
    if not workers:
        raise CheckFailed(f"the broker {where} answers but no worker does: start "
                          "`csss worker` (jobs wait in the queue until one runs)")
    return f"broker {where}; {len(workers)} worker(s) answer: {', '.join(workers)}"


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: show only its scheme
        return url.split(":", 1)[0] + "://..."


CHECKS: tuple[tuple[str, Callable[[Flask], str]], ...] = (
    ("database", check_database),
    ("storage", check_storage),
    ("mail", check_mail),
    ("model", check_model),
    ("jobs", check_jobs),
)


def run_checks(app: Flask) -> list[Result]:
    s = app.extensions["csss"].settings
    results = [Result("configuration", True, f"CSSS_ENV={s.env}")]
    for name, check in CHECKS:
        try:
            results.append(Result(name, True, check(app)))
        except CheckFailed as err:
            results.append(Result(name, False, str(err)))
    return results


@click.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Verify configuration, database (reachable, migrated), storage, mail, model, jobs."""
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()
    except ConfigurationError as err:
        click.echo(f"FAIL  configuration  {err}")
        ctx.exit(1)
    except Exception as err:
        # contain the password, so only the kind of error is shown
        click.echo(f"FAIL  configuration  the app does not start ({type(err).__name__}); "
                   "check DATABASE_URL and the other settings")
        ctx.exit(1)
    results = run_checks(app)
    for result in results:
        click.echo(f"{'ok  ' if result.ok else 'FAIL'}  {result.name:<13}  {result.detail}")
    failed = [r.name for r in results if not r.ok]
    if failed:
        click.echo(f"{len(failed)} check(s) failed: {', '.join(failed)}", err=True)
        ctx.exit(1)
