"""Correcting a released report: the released version is never rewritten.

An amendment makes the DiagnosticReport's next version (status `corrected` when the finding
changes, `amended` when a note is added), renders and stores a new PDF, keeps the old PDF
and the old version (vread) as they were, and e-mails the new PDF to the patient. Doctors
and admins may amend (states.RULES); an admin needs a fresh second factor, as to approve.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import history
from csss_fhir.errors import ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.mail import messages
from csss_fhir.models import Report, ReportAmendment, utcnow
from csss_fhir.reports.content import Amendment
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import require_recent_second_factor
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


def amend(session: Session, svc: Services, actor: Actor, report_id: str, *, note: str,
          finding: str | None = None, code: str | None = None,
          if_match: str | None = None) -> Report:
    """Release a corrected version of a report.

    Raises:
        StepNotAllowedError: not a doctor or admin. WrongStateError: the scan's report is not
        released. PreconditionFailedError: `If-Match` names another version of the report.
        InvalidInputError: no note, or a finding that is too long. FindingRequiredError: the
        finding is "Uncertain".
    """
    require_step(actor, Step.AMEND)
    if actor.role == "admin":
        require_recent_second_factor(session, svc, actor, code)
    note = required_note(note, "a note saying what is corrected is required to amend a report")
    finding = clean_finding(finding)
    report = session.get(Report, report_id)
    if report is None:
        raise ResourceNotFoundError(f"DiagnosticReport/{report_id} does not exist")
    check_version(if_match, reference=f"DiagnosticReport/{report.id}",
                  current=report.version_id)
    scan = report.scan
    task = locked_task(session, scan, Step.AMEND, None)
    now = utcnow()
    earlier = session.scalars(select(ReportAmendment).where(
        ReportAmendment.report_id == report.id).order_by(ReportAmendment.created_at)).all()
    amendments = [Amendment(a.author.name, a.author.role if a.author else "", a.created_at,
                            a.note, a.finding) for a in earlier]
    amendments.append(Amendment(actor.name, actor.role, now, note, finding))
    status = "corrected" if finding or any(a.finding for a in earlier) else "amended"
    content = replace(report_content(session, svc, scan, approver_name=report.approved_by.name,
                                     report_id=report.id, approved_at=report.issued),
                      status=status, version=report.version_id + 1, amendments=amendments)
    pdf = render_pdf(content)
    with stored(session, svc.store, pdf) as digest, one_winner(session):
        blob = add_pdf(session, scan, digest, pdf)
        report.status = status
        report.pdf_id = blob.id
        report.pdf_sha1 = hashlib.sha1(pdf).hexdigest()
        report.updated_at = now
        session.flush()
        session.add(ReportAmendment(
            report_id=report.id, report_version=report.version_id, created_at=now,
            author_id=actor.user_id, status=status, note=note, finding=finding,
            pdf_id=blob.id))
        event = record_event(session, actor, task, Step.AMEND, task.state,
                             [f"DiagnosticReport/{report.id}"])
        history.record(session, report, event)
        mail_id = messages.queue_report_mail(session, svc.settings, report, pdf)
    log.info("report amended", extra={"report_id": report.id, "version": report.version_id,
                                      "mail_queued": mail_id is not None})
    return report
