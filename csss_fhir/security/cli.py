"""`csss users totp-enrol|disable` and `csss clients create`: the security commands."""

from __future__ import annotations

from typing import BinaryIO

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from csss_fhir.errors import CsssError
from csss_fhir.models import Role, User, db
from csss_fhir.security.actor import Actor

# Whoever runs `csss` holds the database and the secrets, so the commands act as an
# administrator; they have no account of their own, so "your own account" never applies.
OPERATOR = Actor(role=Role.ADMIN, name="csss command line")


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no user with the e-mail address {email}")
    return user


@click.command("totp-enrol")
@click.argument("email")
@with_appcontext
def totp_enrol(email: str) -> None:
    """Give an admin a TOTP authenticator; print its otpauth:// URI (shown once)."""
    from csss_fhir.extensions import services
    from csss_fhir.security import totp

    user = _user(email)
    settings = services().settings
    try:
        uri = totp.enrol(db.session, user, secret_key=settings.secret_key or "",
                         issuer=settings.hospital_name)
    except CsssError as err:
        raise click.ClickException(str(err)) from err
    click.echo("Scan this URI with an authenticator app (or paste it); it is not shown again:",
               err=True)
    click.echo(uri)


@click.command("disable")
@click.argument("email")
@with_appcontext
def users_disable(email: str) -> None:
    """Disable a user: every token they hold stops working at once."""
    from csss_fhir import accounts
    from csss_fhir.extensions import services

    user = _user(email)
    try:
        accounts.set_active(db.session, services(), OPERATOR, user.id, False)
    except CsssError as err:
        raise click.ClickException(str(err)) from err
    click.echo(user.id)


@click.group("clients")
def clients_group() -> None:
    """Hospital system clients (client_credentials)."""


@clients_group.command("create")
@click.argument("name")
@click.option("--scopes", required=True,
              help="space- or comma-separated SMART scopes, e.g. 'system/*.read'")
@click.option("--jwks", "jwks_file", type=click.File("rb"),
              help="the client's public JWKS (JSON file): it signs its token requests "
                   "(private_key_jwt, RS384 or ES384) and gets no secret")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="a SMART app's redirect URI (repeat for several); its --scopes are then "
                   "app scopes, e.g. 'launch launch/patient user/*.rs'")
@click.option("--public", is_flag=True,
              help="a SMART app that cannot keep a secret (PKCE only, no secret)")
@with_appcontext
def clients_create(name: str, scopes: str, jwks_file: BinaryIO | None,
                   redirect_uris: tuple[str, ...], public: bool) -> None:
    """Register a client; print its id and secret (the secret is shown only now)."""
    from csss_fhir.security import clients

    try:
        new = clients.create_client(db.session, name, scopes,
                                    jwks=jwks_file.read() if jwks_file else None,
                                    redirect_uris=redirect_uris, public=public)
    except CsssError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"scopes: {' '.join(new.scopes)}", err=True)
    if new.client_secret is None:
        click.echo("The client signs its token requests with its private key." if jwks_file
                   else "A public app: it proves itself with PKCE, not a secret.", err=True)
        click.echo(f"client_id={new.client_id}")
        return
    click.echo("Store the secret now: it is not shown again.", err=True)
    click.echo(f"client_id={new.client_id}")
    click.echo(f"client_secret={new.client_secret}")
