"""The job functions every runner calls: classify a new scan, send one outbox row, send one
report version's DICOM result to the PACS, notify one subscriber, sweep.

Each job opens its own database session (never the request's), is keyed by the row it
serves and claims that row first, so running it twice — a duplicate message, the sweep
finding it again — does the work once. A job returns the jobs to run next (the sweep's).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask
from sqlalchemy import or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from csss_fhir.extensions import Services
from csss_fhir.jobs import CLASSIFY_SCAN, NOTIFY_SUBSCRIBER, SEND_DICOM, SEND_MAIL, SWEEP
from csss_fhir.models import AiJob, MailMessage, PacsExport, Task, db, utcnow
from csss_fhir.workflow.states import ScanState

log = logging.getLogger(__name__)

AI_FIRST_RETRY_SECONDS = 10
AI_BATCH = 16  # scans one classification job takes: its own and the oldest waiting ones
SWEEP_BATCH = 200
PACS_RESWEEP_SECONDS = 120  # a pending export the sweep queued is queued again this much later
JOBS = (CLASSIFY_SCAN, SEND_MAIL, SEND_DICOM, NOTIFY_SUBSCRIBER, SWEEP)

FollowUps = list[tuple[str, str | None]]


def run_job(app: Flask, job: str, key: str | None) -> FollowUps:
    """Run one job in its own session (inside `app`'s context); return follow-up jobs.

    Database errors propagate (the runner backs off and the row stays due); every other
    outcome is recorded on the job's row.
    """
    if job not in JOBS:
        raise ValueError(f"unknown job {job!r}; expected one of {', '.join(JOBS)}")
    svc: Services = app.extensions["csss"]
    with Session(db.engine) as session:
        if job == CLASSIFY_SCAN:
            classify_scan(session, svc, key)
            return []
        if job == SEND_MAIL:
            send_mail(session, svc, key)
            return []
        if job == SEND_DICOM:
            send_dicom(session, svc, key)
            return []
        if job == NOTIFY_SUBSCRIBER:
            notify_subscriber(session, svc, key)
            return []
        return sweep(session, svc)


def _pending_scans():
    return select(Task.scan_id).where(Task.state == ScanState.PENDING_AI)


def classify_scan(session: Session, svc: Services, scan_id: str) -> str:
    """Classify a scan still waiting for the AI, and with it up to AI_BATCH - 1 others that
    wait for their first attempt; return what happened to `scan_id`.

    "skipped": not waiting, or another worker holds it. "classified". "retrying": it failed
    and is due again later. "not-assessable": it failed AI_MAX_ATTEMPTS times and ends in
    AI_ANALYZED as "Not assessable" with the last error as its reason.

    Taking the backlog in batches is what lets the AI keep up with uploads: one claim and
    one release for the batch instead of two commits per scan. Each scan is still claimed
    by its own row and written in its own transaction (`classification.classify_new_scan`),
    and a failure is recorded on its own row; a batch whose worker dies leaves its scans
    claimed until the claim lapses, and the sweep runs each again then.
    """
    claimed = _claim(session, svc, scan_id)
    outcomes: dict[str, str] = {}
    for each in claimed:
        outcomes[each] = _classify_claimed(session, svc, each)
    # A failure has released its own row with its error.
    _release(session, [each for each, outcome in outcomes.items()
                       if outcome in ("classified", "skipped")], error=None)
    if len(claimed) > 1:
        log.info("classification batch", extra={"scans": len(claimed)})
    return outcomes.get(scan_id, "skipped")


def _claim(session: Session, svc: Services, scan_id: str) -> list[str]:
    """Claim `scan_id` if it waits, and up to AI_BATCH - 1 of the oldest scans that wait for
    their first attempt and no worker holds; return the claimed ids, `scan_id` first.

    Scans in back-off after a failure are left to their own message or the sweep. On
    PostgreSQL the candidates are read with SKIP LOCKED, so workers claiming at once take
    different scans instead of queueing on the same rows; the UPDATE re-checks every
    condition, so a candidate another worker claimed meanwhile is simply not claimed.
    """
    now = utcnow()
    unclaimed = or_(AiJob.claimed_until.is_(None), AiJob.claimed_until < now)
    others = (select(AiJob.scan_id)
              .where(AiJob.scan_id != scan_id, AiJob.attempts == 0, unclaimed,
                     AiJob.scan_id.in_(_pending_scans()))
              .order_by(AiJob.due_at).limit(AI_BATCH - 1)
              .with_for_update(skip_locked=True, of=AiJob))
    candidates = [scan_id, *session.scalars(others)]
    claimed = set(session.scalars(
        update(AiJob).where(AiJob.scan_id.in_(candidates), AiJob.scan_id.in_(_pending_scans()),
                            unclaimed)
        .values(attempts=AiJob.attempts + 1,
                # A killed worker's claim lapses with the AI deadline, so the sweep re-runs
                # its scan then; a second run of a slow one changes nothing (Task version).
                claimed_until=now + timedelta(seconds=svc.settings.ai_deadline_seconds))
        .returning(AiJob.scan_id)
        .execution_options(synchronize_session=False)))
    session.commit()
    return [each for each in candidates if each in claimed]


def _classify_claimed(session: Session, svc: Services, scan_id: str) -> str:
    """Classify one claimed scan in its own transaction; return classify_scan's outcome.

    A failure is recorded on the scan's row, which it releases with its error.
    """
    from csss_fhir.workflow import classification

    try:
        result = classification.classify_new_scan(session, svc, scan_id)
    except DBAPIError:
        raise  # the database, not the scan: the claims lapse and the sweep retries
    except Exception as err:
        session.rollback()
        return _record_failure(session, svc, scan_id, err)
    return "classified" if result is not None else "skipped"


def _record_failure(session: Session, svc: Services, scan_id: str, err: Exception) -> str:
    from csss_fhir.workflow import classification

    job = session.get(AiJob, scan_id)
    # The kind of error only: messages of image decoders may quote the file.
    error = f"{type(err).__name__} on attempt {job.attempts}"
    log.warning("classification failed", extra={"scan_id": scan_id, "attempt": job.attempts,
                                                "error": type(err).__name__})
    if job.attempts < svc.settings.ai_max_attempts:
        delay = AI_FIRST_RETRY_SECONDS * 2 ** (job.attempts - 1)
        job.due_at = utcnow() + timedelta(seconds=delay)
        _release(session, [scan_id], error=error)
        return "retrying"
    _release(session, [scan_id], error=error)
    classification.record_not_assessable(
        session, svc, scan_id,
        f"the AI analysis failed {job.attempts} times ({type(err).__name__}); "
        "the image may be damaged or in a form the classifier cannot read")
    return "not-assessable"


def _release(session: Session, scan_ids: list[str], *, error: str | None) -> None:
    if not scan_ids:
        return
    session.execute(update(AiJob).where(AiJob.scan_id.in_(scan_ids))
                    .values(claimed_until=None, last_error=error)
                    .execution_options(synchronize_session=False))
    session.commit()


def send_mail(session: Session, svc: Services, mail_id: str) -> None:
    """Send one outbox row if it is due and no other sender holds it."""
    from csss_fhir.mail import outbox

    outbox.deliver(session, svc.mail, [mail_id])


def send_dicom(session: Session, svc: Services, export_id: str) -> str:
    """C-STORE one report version's DICOM result if it is pending and no other job holds it."""
    from csss_fhir.dicom_results import export

    return export.send(session, svc, export_id)


def notify_subscriber(session: Session, svc: Services, subscription_id: str) -> str:
    """Send a subscription's due handshake, events (in order) or heartbeat."""
    from csss_fhir.subscriptions import delivery

    return delivery.notify(session, f"{svc.settings.public_root}/fhir", subscription_id,
                           svc.settings.subscription_endpoint_allowlist)


def sweep(session: Session, svc: Services) -> FollowUps:
    """Find work the database says is due and whose message may be lost.

    Scans in PENDING_AI past their due time (AI_DEADLINE_SECONDS after upload, or a failed
    attempt's back-off) and unclaimed; e-mails due; PACS exports pending past their back-off
    and unclaimed; subscriptions with a handshake, events or a heartbeat due. Each one found
    is due again only a
    deadline later, so a slow queue is not flooded with copies.
    """
    from csss_fhir.mail import outbox
    from csss_fhir.subscriptions import delivery

    now = utcnow()
    scan_ids = list(session.scalars(
        select(AiJob.scan_id).where(AiJob.scan_id.in_(_pending_scans()), AiJob.due_at <= now,
                                    or_(AiJob.claimed_until.is_(None),
                                        AiJob.claimed_until < now))
        .order_by(AiJob.due_at).limit(SWEEP_BATCH)))
    if scan_ids:
        session.execute(update(AiJob).where(AiJob.scan_id.in_(scan_ids))
                        .values(due_at=now + timedelta(seconds=svc.settings.ai_deadline_seconds))
                        .execution_options(synchronize_session=False))
    uncertain = outbox.mark_uncertain(session, now=now)
    mail_ids = list(session.scalars(select(MailMessage.id).where(outbox.claimable(now))
                                    .order_by(MailMessage.created_at).limit(SWEEP_BATCH)))
    export_ids = list(session.scalars(
        select(PacsExport.id).where(PacsExport.state == "pending", PacsExport.due_at <= now,
                                    or_(PacsExport.claimed_until.is_(None),
                                        PacsExport.claimed_until < now))
        .order_by(PacsExport.due_at).limit(SWEEP_BATCH)))
    if export_ids:
        session.execute(update(PacsExport).where(PacsExport.id.in_(export_ids))
                        .values(due_at=now + timedelta(seconds=PACS_RESWEEP_SECONDS))
                        .execution_options(synchronize_session=False))
    subscription_ids = delivery.due(session, now)
    session.commit()
    if scan_ids or mail_ids or uncertain or export_ids or subscription_ids:
        log.info("sweep", extra={"scans": len(scan_ids), "mails": len(mail_ids),
                                 "uncertain": uncertain, "pacs_exports": len(export_ids),
                                 "subscriptions": len(subscription_ids)})
    return ([(CLASSIFY_SCAN, i) for i in scan_ids] + [(SEND_MAIL, i) for i in mail_ids]
            + [(SEND_DICOM, i) for i in export_ids]
            + [(NOTIFY_SUBSCRIBER, i) for i in subscription_ids])
