"""The `csss` command line: database, users, demo data, and the classifier's commands."""

from __future__ import annotations

import os
import secrets
import sys
from datetime import date, datetime

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from csss_fhir import create_app
from csss_fhir.errors import CsssError
from csss_fhir.models import db
from csss_fhir.registration import GENDERS


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def cli() -> None:
    """CSSS-FHIR: AI chest-scan workflow over FHIR R4."""


@cli.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Create or migrate the database named by DATABASE_URL."""
    from csss_fhir import migrate

    migrate.upgrade(current_app._get_current_object())
    click.echo("database is up to date")


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (development)."""
    from csss_fhir import migrate

    migrate.revision(current_app._get_current_object(), message)


@cli.group("users")
def users_group() -> None:
    """User accounts."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True,
              type=click.Choice(["patient", "doctor", "pharmacist", "admin"]))
@click.option("--name", required=True)
@click.option("--birth-date", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--gender", type=click.Choice(GENDERS))
@click.option("--mrn")
@with_appcontext
def users_create(email: str, role: str, name: str, birth_date: datetime | None, gender: str | None,
                 mrn: str | None) -> None:
    """Create a user; the password comes from CSSS_PASSWORD or a prompt."""
    from csss_fhir.extensions import services
    from csss_fhir.registration import create_user

    password = os.environ.get("CSSS_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(db.session, email=email, role=role, name=name, password=password,
                           bcrypt_rounds=services().settings.bcrypt_rounds,
                           birth_date=birth_date.date() if birth_date else None,
                           gender=gender, mrn=mrn)
    except CsssError as err:
        raise click.ClickException(str(err)) from err
    if user.patient_id:
        click.echo(f"{user.id} {user.patient_id}")
    else:
        click.echo(user.id)


DEMO_USERS = (
    ("patient@demo.local", "patient", "Ada Lovelace", date(1985, 12, 10), "female", "MRN-1001"),
    ("patient2@demo.local", "patient", "Kavya Raman", date(1992, 4, 2), "female", "MRN-1002"),
    ("doctor@demo.local", "doctor", "Dr. Grace Hopper", None, None, None),
    ("pharmacist@demo.local", "pharmacist", "Linus Pauling", None, None, None),
    ("admin@demo.local", "admin", "Alan Turing", None, None, None),
)


@cli.group("demo")
def demo_group() -> None:
    """Demo data."""


@demo_group.command("seed")
@with_appcontext
def demo_seed() -> None:
    """Create one user per role and two demo patients, printing their passwords.

    Existing demo users are left as they are (their passwords are not shown again).
    """
    from sqlalchemy import select

    from csss_fhir.extensions import services
    from csss_fhir.models import User
    from csss_fhir.registration import create_user

    rounds = services().settings.bcrypt_rounds
    for email, role, name, birth, gender, mrn in DEMO_USERS:
        if db.session.scalar(select(User.id).where(User.email == email)):
            click.echo(f"{role:<11} {email:<24} (exists; password unchanged)")
            continue
        password = f"demo-{secrets.token_urlsafe(9)}"
        create_user(db.session, email=email, role=role, name=name, password=password,
                    bcrypt_rounds=rounds, birth_date=birth, gender=gender, mrn=mrn)
        click.echo(f"{role:<11} {email:<24} {password}")
    click.echo("Admins also need a one-time code: it is e-mailed (MAIL_BACKEND=file: see "
               f"{services().instance_path / 'outbox'}).", err=True)


def _add_ml_commands() -> None:
    try:
        from ml.cli import COMMANDS
    except ImportError as err:  # ml/ ships with the package; this only guards a broken install
        print(f"warning: classifier commands unavailable: {err}", file=sys.stderr)
        return
    for command in COMMANDS:
        cli.add_command(command)


def _add_security_commands() -> None:
    from csss_fhir.security.cli import clients_group, totp_enrol, users_disable

    users_group.add_command(totp_enrol)
    users_group.add_command(users_disable)
    cli.add_command(clients_group)


_add_security_commands()
_add_ml_commands()

from csss_fhir.mail.cli import mail_group  # noqa: E402 - the mail package's commands

cli.add_command(mail_group)

from csss_fhir.dimse.cli import dicom_group  # noqa: E402 - the DICOM listener's commands

cli.add_command(dicom_group)

from csss_fhir.storage.cli import storage_group  # noqa: E402 - the storage package's commands

cli.add_command(storage_group)


def _add_job_commands() -> None:
    from csss_fhir.jobs.cli import scheduler, worker

    cli.add_command(worker)
    cli.add_command(scheduler)


_add_job_commands()


def _add_check_command() -> None:
    from csss_fhir.checks import check

    cli.add_command(check)


_add_check_command()
