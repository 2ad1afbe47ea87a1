"""The Celery app, built from Settings as Flask's "Background Tasks with Celery" pattern does:
every task runs inside the Flask app context, and the tasks are the job functions of
`tasks`, registered under `csss.<job>`.

Delivery settings follow from the database being the truth: a message is acknowledged only
after its job ran (`task_acks_late`), a worker killed mid-job gets it redelivered
(`task_reject_on_worker_lost`), and anything still lost is found by the sweep, which
Celery beat runs every JOBS_SWEEP_SECONDS.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask

from csss_fhir.jobs import CLASSIFY_SCAN, NOTIFY_SUBSCRIBER, SEND_MAIL, SWEEP

BROKER_TIMEOUT_SECONDS = 2.0  # a request's enqueue waits at most this for a down broker


def make_celery(app: Flask) -> Celery:
    """The Celery app for `app` (kept in `app.extensions["celery"]`)."""
    if "celery" in app.extensions:
        return app.extensions["celery"]
    settings = app.extensions["csss"].settings

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=settings.celery_broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                                  "socket_timeout": 10, "visibility_timeout": 3600},
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="csss",
        beat_schedule={"csss-sweep": {"task": f"csss.{SWEEP}",
                                      "schedule": settings.jobs_sweep_seconds}},
        worker_hijack_root_logger=False,
    )
    _register(celery, app)
    app.extensions["celery"] = celery
    return celery


def _register(celery: Celery, app: Flask) -> None:
    from csss_fhir.jobs import tasks

    def run(job: str, key: str | None) -> None:
        for follow_up in tasks.run_job(app, job, key):
            app.extensions["csss_jobs"].submit(*follow_up)

    for job in (CLASSIFY_SCAN, SEND_MAIL, NOTIFY_SUBSCRIBER, SWEEP):
        # Database errors retry with back-off (the worker never gives up on the database);
        # the job's row keeps every other outcome.
        celery.task(name=f"csss.{job}", bind=True, autoretry_for=_database_errors(),
                    retry_backoff=True, retry_backoff_max=60, max_retries=None,
                    )(_bound(run, job))


def _bound(run: Any, job: str) -> Any:
    def task(self: Task, key: str | None = None) -> None:
        run(job, key)

    task.__name__ = f"csss_{job}"
    return task


def _database_errors() -> tuple[type[Exception], ...]:
    from sqlalchemy.exc import DBAPIError

    return (DBAPIError,)


def broker_answers(celery: Celery) -> None:
    """Raises the connection error when the broker does not answer within a few seconds."""
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)


def workers_answering(celery: Celery, timeout: float = 2.0) -> list[str]:
    """The names of the workers that answer a ping."""
    replies = celery.control.ping(timeout=timeout) or []
    return sorted(name for reply in replies for name in reply)
