"""Correcting a released report: a doctor proposes, an administrator approves, and only then
is the report's next version released. The released version is never rewritten.

`amend` ($amend) records a doctor's proposal as pending: any doctor may propose (who
proposed is recorded), and a report has at most one pending proposal. `approve_amendment`
($approve-amendment) needs an admin with a fresh second factor, the same rule as $approve:
it makes the DiagnosticReport's next version (status `corrected` when a finding changed,
`amended` when a note was added), renders and stores a new PDF, keeps the old PDF and the old
version (vread) as they were, makes the corrected finding the report's current one, and
queues the new PDF's e-mail to the patient through the outbox, and files the version's AI
result as DICOM again (`csss_fhir.dicom_results`: a new SR with the corrected finding).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import history, subscriptions
from csss_fhir.dicom_results import results as dicom_results
from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.mail import messages
from csss_fhir.models import Report, ReportAmendment, utcnow
from csss_fhir.reports.content import Amendment
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import require_recent_second_factor
from csss_fhir.workflow.errors import AmendmentPendingError
from csss_fhir.workflow.findings import clean_finding
from csss_fhir.workflow.release import add_pdf, report_content
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import (
    check_version,
    locked_task,
    one_winner,
    record_event,
    require_step,
    required_note,
    stored,
)

log = logging.getLogger(__name__)


def amend(session: Session, actor: Actor, report_id: str, *, note: str,
          finding: str | None = None, if_match: str | None = None) -> ReportAmendment:
    """Propose a correction of a released report; it waits for an administrator.

    Raises:
        StepNotAllowedError: not a doctor. WrongStateError: the scan's report is not
        released. AmendmentPendingError: another amendment of this report waits already.
        PreconditionFailedError: `If-Match` names another version of the report.
        InvalidInputError: no note, or a finding that is too long. FindingRequiredError: the
        finding is "Uncertain".
    """
    require_step(actor, Step.AMEND)
    note = required_note(note, "a note saying what is corrected is required to amend a report")
    finding = clean_finding(finding)
    report = _report(session, report_id)
    check_version(if_match, reference=f"DiagnosticReport/{report.id}",
                  current=report.version_id)
    # The unique pending_report_id makes the second of two racing proposals fail on insert.
    with one_winner(session):
        task = locked_task(session, report.scan, Step.AMEND, None)
        if _pending(session, report.id) is not None:
            raise AmendmentPendingError(
                f"DiagnosticReport/{report.id} has an amendment waiting for an "
                "administrator's approval; wait for it before proposing another",
                details="amendment-pending")
        amendment = ReportAmendment(report_id=report.id, pending_report_id=report.id,
                                    author_id=actor.user_id, status="pending", note=note,
                                    finding=finding)
        session.add(amendment)
        session.flush()
        event = record_event(session, actor, task, Step.AMEND, task.state,
                             [f"DiagnosticReport/{report.id}"])
        history.record(session, event)
    log.info("report amendment proposed", extra={"report_id": report.id,
                                                 "amendment_id": amendment.id})
    return amendment


def approve_amendment(session: Session, svc: Services, actor: Actor, report_id: str, *,
                      code: str | None = None, if_match: str | None = None) -> Report:
    """Release the pending amendment as the report's next version and e-mail its PDF.

    Raises:
        StepNotAllowedError: not an admin. OtpRequiredError / OtpInvalidError: no fresh
        second factor. AmendmentPendingError: nothing waits for approval (or another
        admin approved it first). WrongStateError: a racing approval won.
        PreconditionFailedError: `If-Match` names another version of the report.
    """
    require_step(actor, Step.APPROVE_AMENDMENT)
    require_recent_second_factor(session, svc, actor, code)
    report = _report(session, report_id)
    check_version(if_match, reference=f"DiagnosticReport/{report.id}",
                  current=report.version_id)
    scan = report.scan
    task = locked_task(session, scan, Step.APPROVE_AMENDMENT, None)
    proposal = _pending(session, report.id)
    if proposal is None:
        raise AmendmentPendingError(
            f"DiagnosticReport/{report.id} has no amendment waiting for approval",
            details="no-amendment-pending")
    now = utcnow()
    decided = approved(session, report.id)
    amendments = [_content(a, a.approved_by.name if a.approved_by else None)
                  for a in decided]
    amendments.append(replace(_content(proposal, actor.name), at=now))
    status = "corrected" if any(a.finding for a in [*decided, proposal]) else "amended"
    finding = proposal.finding or report.finding or scan.review.finding
    content = replace(report_content(session, svc, scan, approver_name=report.approved_by.name,
                                     report_id=report.id, approved_at=report.issued),
                      status=status, version=report.version_id + 1, amendments=amendments,
                      finding=finding)
    pdf = render_pdf(content)
    with stored(session, svc.store, pdf) as digest, one_winner(session):
        blob = add_pdf(session, scan, digest, pdf)
        report.status = status
        report.finding = finding
        report.pdf_id = blob.id
        report.pdf_sha1 = hashlib.sha1(pdf).hexdigest()
        report.updated_at = now
        session.flush()
        proposal.pending_report_id = None
        proposal.status = status
        proposal.report_version = report.version_id
        proposal.pdf_id = blob.id
        proposal.approved_by_id = actor.user_id
        proposal.approved_at = now
        event = record_event(session, actor, task, Step.APPROVE_AMENDMENT, task.state,
                             [f"DiagnosticReport/{report.id}"])
        history.record(session, report, event)
        subscriptions.record(session, subscriptions.REPORT_RELEASED,
                             f"DiagnosticReport/{report.id}", report.patient_id)
        mail_id = messages.queue_report_mail(session, svc.settings, report, pdf)
        dicom_results.record(session, svc, scan, report, gradcam_png=content.gradcam)
    log.info("report amendment approved", extra={"report_id": report.id,
                                                 "version": report.version_id,
                                                 "mail_queued": mail_id is not None})
    return report


def pending_amendments(session: Session, actor: Actor) -> Sequence[ReportAmendment]:
    """Every amendment waiting for approval, oldest first (for the administrator)."""
    require_step(actor, Step.APPROVE_AMENDMENT)
    return session.scalars(select(ReportAmendment).where(
        ReportAmendment.pending_report_id.is_not(None)).order_by(
        ReportAmendment.created_at)).all()


def pending_for(session: Session, report_id: str) -> ReportAmendment | None:
    """The amendment of this report waiting for approval, if any."""
    return _pending(session, report_id)


def approved(session: Session, report_id: str) -> Sequence[ReportAmendment]:
    """The report's released amendments, oldest first."""
    return session.scalars(select(ReportAmendment).where(
        ReportAmendment.report_id == report_id,
        ReportAmendment.status != "pending").order_by(ReportAmendment.created_at)).all()


def _pending(session: Session, report_id: str) -> ReportAmendment | None:
    return session.scalar(select(ReportAmendment).where(
        ReportAmendment.pending_report_id == report_id))


def _content(amendment: ReportAmendment, approver_name: str | None) -> Amendment:
    author = amendment.author
    return Amendment(author.name, author.role, amendment.approved_at or amendment.created_at,
                     amendment.note, amendment.finding, approved_by=approver_name)


def _report(session: Session, report_id: str) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise ResourceNotFoundError(f"DiagnosticReport/{report_id} does not exist")
    return report
