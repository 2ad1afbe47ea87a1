"""The `csss` command line."""

from __future__ import annotations

from sqlalchemy import select

from csss_fhir.cli import cli
from csss_fhir.models import Patient, User, db


def test_users_create_prints_the_ids_and_makes_a_patient(app, runner, monkeypatch):
    monkeypatch.setenv("CSSS_PASSWORD", "a-long-enough-password")
    result = runner.invoke(cli, args=["users", "create", "--email", "mira@test.local", "--role",
                                 "patient", "--name", "Mira Šimić", "--birth-date",
                                 "1970-01-02", "--gender", "female", "--mrn", "M-9"])
    assert result.exit_code == 0, result.output
    user_id, patient_id = result.output.strip().splitlines()[-1].split()
    with app.app_context():
        user = db.session.get(User, user_id)
        patient = db.session.get(Patient, patient_id)
        assert user.role == "patient" and user.patient_id == patient.id
        assert patient.mrn == "M-9" and patient.family_name == "Šimić"
        assert user.password_hash.startswith("$2")


def test_users_create_refuses_a_weak_password(runner, monkeypatch):
    monkeypatch.setenv("CSSS_PASSWORD", "short")
    result = runner.invoke(cli, args=["users", "create", "--email", "x@test.local", "--role",
                                 "doctor", "--name", "X"])
    assert result.exit_code != 0 and "at least" in result.output


def test_demo_seed_creates_one_user_per_role_and_is_repeatable(app, runner):
    first = runner.invoke(cli, args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert "doctor@demo.local" in first.output and "demo-" in first.output
    again = runner.invoke(cli, args=["demo", "seed"])
    assert "exists" in again.output
    with app.app_context():
        roles = sorted(db.session.scalars(select(User.role)).all())
    assert roles == ["admin", "doctor", "patient", "patient", "pharmacist"]


def test_users_create_takes_exactly_the_patient_genders(runner, monkeypatch):
    from csss_fhir.registration import GENDERS

    monkeypatch.setenv("CSSS_PASSWORD", "a-long-enough-password")
    result = runner.invoke(cli, args=["users", "create", "--email", "r@test.local", "--role",
                                      "patient", "--name", "R", "--gender", "robot"])
    assert result.exit_code == 2
    assert all(f"'{gender}'" in result.output for gender in GENDERS)
