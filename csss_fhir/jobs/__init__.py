"""jobs: work that must not hold a request — classify a new scan, send an e-mail, send a
released AI result to the PACS (`dicom_results.export`), notify a subscriber — and the
sweep that finds work a lost message or a killed worker left undone.

The database is the truth. A command that decides on work writes its row (the scan's
`AiJob`, the outbox's `MailMessage`) and calls `enqueue(session, JOB, key)`; the message
leaves only after that transaction commits (nothing is sent for a rollback), and a message
that never arrives is found again by the sweep. Every job is keyed by its row and claims it
first, so a duplicate message is a no-op.

Where jobs run (Settings.jobs_runner): Celery workers through Redis (`celery_app`,
`csss worker`), a thread in each app process when no broker is configured (the quick start),
or inline after the commit (tests). `runners` holds the three; `tasks` the job functions
they all call. Nothing here decides a workflow step: the jobs call `csss_fhir.workflow` and
`csss_fhir.mail`.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

CLASSIFY_SCAN = "classify_scan"
SEND_MAIL = "send_mail"
SEND_DICOM = "send_dicom"  # C-STORE a report version's DICOM result (keyed by PacsExport)
NOTIFY_SUBSCRIBER = "notify_subscriber"  # key: a Subscription id (subscriptions/delivery.py)
SWEEP = "sweep"
_PENDING = "csss_jobs"  # Session.info key: jobs waiting for this transaction to commit


def enqueue(session: Session, job: str, key: str) -> None:
    """Send `job` for row `key` once the session's current transaction commits."""
    runner = current_app.extensions["csss_jobs"]
    session.info.setdefault(_PENDING, []).append((runner, job, key))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Hand the committed transaction's jobs to their runner.

    A runner never raises here: the commit has happened, the request must not fail for a
    broker that is down (the sweep finds the work again).
    """
    pending = session.info.pop(_PENDING, None)
    for runner, job, key in pending or ():
        runner.submit(job, key)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back decision sends nothing (a savepoint's rollback keeps the outer ones)."""
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


def init_app(app: Flask) -> None:
    """Choose the runner the settings name and add `csss worker` / `csss scheduler`."""
    from csss_fhir.jobs.runners import make_runner

    app.extensions["csss_jobs"] = make_runner(app)
