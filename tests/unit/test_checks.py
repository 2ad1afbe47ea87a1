"""`csss check`: each problem is named with what to fix, and fails the command."""

from __future__ import annotations

import socket
from dataclasses import replace

from aiosmtpd.controller import Controller
from click.testing import CliRunner
from flask.cli import ScriptInfo

from csss_fhir import create_app
from csss_fhir.cli import cli
from tests import factories


def run_check(settings):
    """`csss check` on an app built from `settings` as the command line would build it."""
    result = CliRunner().invoke(cli, args=["check"],
                                obj=ScriptInfo(create_app=lambda: create_app(settings)))
    return result.exit_code, result.output


def test_configuration_the_app_refuses_fails_with_the_reason(tmp_path):
    settings = replace(factories.settings_for(tmp_path / "instance", "sqlite://"),
                       env="production", secret_key=None)
    code, output = run_check(settings)
    assert code == 1
    assert "FAIL  configuration" in output and "SECRET_KEY" in output


def test_a_ready_installation_passes_every_check(settings):
    code, output = run_check(settings)
    assert code == 0, output
    for name in ("configuration", "database", "storage", "mail", "model", "jobs"):
        assert f"ok    {name}" in output
    assert "migrations at head" in output
    assert "no broker: jobs run inline" in output


def test_an_unmigrated_database_fails_and_says_to_upgrade(tmp_path):
    settings = factories.settings_for(tmp_path / "instance", f"sqlite:///{tmp_path / 'new.db'}")
    code, output = run_check(settings)
    assert code == 1
    assert "FAIL  database" in output and "csss db upgrade" in output


def test_an_unreachable_database_fails_without_showing_its_password(tmp_path):
    port = _closed_port()
    settings = factories.settings_for(
        tmp_path / "instance", f"postgresql+psycopg://csss:s3cret-pw@127.0.0.1:{port}/csss")
    code, output = run_check(settings)
    assert code == 1
    assert "FAIL  database" in output and "DATABASE_URL" in output
    assert "s3cret-pw" not in output


def test_storage_that_cannot_be_written_fails(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, output = run_check(replace(settings, storage_dir=blocker / "storage"))
    assert code == 1
    assert "FAIL  storage" in output and "not writable" in output


def test_smtp_backend_is_reached_and_refusal_is_reported(settings):
    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = _closed_port()
    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = replace(settings, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port,
                       smtp_security="none")
        code, output = run_check(smtp)
        assert code == 0, output
        assert f"SMTP 127.0.0.1:{port} answered" in output
        # STARTTLS demanded but the server offers none: named, not a traceback
        code, output = run_check(replace(smtp, smtp_security="starttls"))
        assert code == 1 and "STARTTLS" in output
    finally:
        controller.stop()
    code, output = run_check(smtp)
    assert code == 1
    assert "FAIL  mail" in output and "SMTP_HOST" in output


def test_a_missing_model_fails_and_names_model_path(settings, tmp_path):
    code, output = run_check(replace(settings, model_path=str(tmp_path / "none.tflite")))
    assert code == 1
    assert "FAIL  model" in output and "MODEL_PATH" in output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_broker_that_does_not_answer_fails_and_names_the_variable(settings):
    from tests.servers import free_port

    broken = replace(settings, jobs_mode="celery",
                     celery_broker_url=f"redis://:secret@127.0.0.1:{free_port()}/0")
    code, output = run_check(broken)
    assert code == 1
    assert "FAIL  jobs" in output and "CELERY_BROKER_URL" in output
    assert "secret" not in output
