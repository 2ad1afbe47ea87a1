"""`csss worker` (Celery worker, with the sweep unless told otherwise) and `csss scheduler`
(Celery beat alone, when the sweep runs in its own process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

if TYPE_CHECKING:
    from celery import Celery


def _celery() -> Celery:
    from csss_fhir.jobs.celery_app import make_celery

    settings = current_app.extensions["csss"].settings
    if not settings.celery_broker_url:
        raise click.ClickException(
            "CELERY_BROKER_URL is not set; set it (e.g. redis://127.0.0.1:6379/0). Without "
            "a broker the app runs its jobs on a thread of its own and needs no worker.")
    return make_celery(current_app._get_current_object())


@click.command("worker")
@click.option("--concurrency", default=2, show_default=True, help="Jobs run at once.")
@click.option("--beat/--no-beat", default=True, show_default=True,
              help="Also run the periodic sweep (one process in the deployment should).")
@with_appcontext
def worker(concurrency: int, beat: bool) -> None:
    """Run background jobs from the broker: classify scans, send e-mail, sweep."""
    celery = _celery()
    instance = current_app.instance_path
    arguments = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}",
                 # threads: the model and the database pool are shared, and loaded once
                 "--pool=threads", "--queues=csss"]
    if beat:
        arguments += ["--beat", f"--schedule={instance}/celerybeat-schedule"]
    celery.worker_main(arguments)


@click.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """Run the periodic sweep alone (Celery beat), for a worker started with --no-beat."""
    celery = _celery()
    celery.start(["beat", "--loglevel=INFO",
                  f"--schedule={current_app.instance_path}/celerybeat-schedule"])
