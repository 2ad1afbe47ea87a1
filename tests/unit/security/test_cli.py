"""The security commands: `csss users disable` goes through the same account service as the
admin page, so it keeps the Practitioner history and refuses what the page refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from csss_fhir import accounts
from csss_fhir.cli import cli
from csss_fhir.errors import InvalidInputError
from csss_fhir.extensions import services
from csss_fhir.models import ResourceVersion, User, db
from csss_fhir.security.cli import OPERATOR
from tests.factories import actor_for, make_user


def _versions(user_id: str) -> list[int]:
    return list(db.session.scalars(
        select(ResourceVersion.version_id)
        .where(ResourceVersion.resource_type == "Practitioner",
               ResourceVersion.resource_id == user_id)
        .order_by(ResourceVersion.version_id)))


def test_disable_by_cli_records_a_practitioner_version(app, runner):
    with app.app_context():
        user = make_user("doctor")[0]
        user_id, email, before = user.id, user.email, _versions(user.id)
    result = runner.invoke(cli, args=["users", "disable", email])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == user_id
    with app.app_context():
        assert not db.session.get(User, user_id).active
        after = _versions(user_id)
    assert after == [*before, before[-1] + 1]


def test_disabling_twice_by_cli_records_one_version(app, runner):
    with app.app_context():
        user = make_user("pharmacist")[0]
        user_id, email = user.id, user.email
    runner.invoke(cli, args=["users", "disable", email])
    with app.app_context():
        once = _versions(user_id)
    result = runner.invoke(cli, args=["users", "disable", email])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert _versions(user_id) == once


def test_disable_by_cli_of_an_unknown_address_fails(app, runner):
    result = runner.invoke(cli, args=["users", "disable", "nobody@test.local"])
    assert result.exit_code != 0 and "no user with the e-mail address" in result.output


def test_the_cli_operator_has_no_own_account_to_protect(app):
    """The own-account guard is the service's: an admin is refused their own account, while
    the command line (which signs in as nobody) may disable any admin."""
    with app.app_context():
        admin = make_user("admin")[0]
        with pytest.raises(InvalidInputError, match="your own account"):
            accounts.set_active(db.session, services(), actor_for(admin), admin.id, False)
        assert OPERATOR.user_id is None
        assert not accounts.set_active(db.session, services(), OPERATOR, admin.id, False).active
