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
from types import SimpleNamespace

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import history
from csss_fhir.errors import InvalidInputError, PreconditionFailedError, ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.mail import outbox
from csss_fhir.models import Blob, Report, ReportAmendment, utcnow
from csss_fhir.reports.content import Amendment
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.security.actor import Actor
from csss_fhir.security.authentication import require_recent_second_factor
from csss_fhir.workflow.commands import (
    UNCERTAIN,
    _event,
    _locked_task,
    _one_winner,
    _queue_report_mail,
    _report_content,
    _require_step,
    _stored,
)
from csss_fhir.workflow.states import Step

log = logging.getLogger(__name__)


def amend(session: Session, svc: Services, actor: Actor, report_id: str, *, note: str,
          finding: str | None = None, code: str | None = None,
          if_match: str | None = None) -> Report:
    """Release a corrected version of a report.

    Raises:
        StepNotAllowedError: not a doctor or admin. WrongStateError: the scan's report is not
        released. PreconditionFailedError: `If-Match` names another version of the report.
        InvalidInputError: no note, or a finding that is "Uncertain" or too long.
    """
    _require_step(actor, Step.AMEND)
    if actor.role == "admin":
        require_recent_second_factor(session, svc, actor, code)
    if not note or not note.strip():
        raise InvalidInputError("a note saying what is corrected is required to amend a report")
    if finding is not None:
        finding = finding.strip() or None
    if finding and (finding.lower() == UNCERTAIN.lower() or len(finding) > 100):
        raise InvalidInputError("the corrected finding must name what the scan shows "
                                "(at most 100 characters)")
    report = session.get(Report, report_id)
    if report is None:
        raise ResourceNotFoundError(f"DiagnosticReport/{report_id} does not exist")
    if if_match is not None and if_match.strip().removeprefix("W/").strip('"') != \
            str(report.version_id):
        raise PreconditionFailedError(
            f"If-Match does not name the current version ({report.version_id}) of "
            f"DiagnosticReport/{report.id}; read it again and retry")
    scan = report.scan
    task = _locked_task(session, scan, Step.AMEND, None)
    now = utcnow()
    earlier = session.scalars(select(ReportAmendment).where(
        ReportAmendment.report_id == report.id).order_by(ReportAmendment.created_at)).all()
    amendments = [Amendment(a.author.name, a.author.role if a.author else "", a.created_at,
                            a.note, a.finding) for a in earlier]
    amendments.append(Amendment(actor.name, actor.role, now, note.strip(), finding))
    status = "corrected" if finding or any(a.finding for a in earlier) else "amended"
    approver = SimpleNamespace(name=report.approved_by.name)
    content = replace(_report_content(session, svc, scan, approver, report.id, report.issued),
                      status=status, version=report.version_id + 1, amendments=amendments)
    pdf = render_pdf(content)
    with _stored(session, svc.store, pdf) as digest, _one_winner(session):
        blob = Blob(sha256=digest, content_type="application/pdf", size=len(pdf),
                    patient_id=scan.patient_id)
        session.add(blob)
        session.flush()
        report.status = status
        report.pdf_id = blob.id
        report.pdf_sha1 = hashlib.sha1(pdf).hexdigest()
        report.updated_at = now
        session.flush()
        session.add(ReportAmendment(
            report_id=report.id, report_version=report.version_id, created_at=now,
            author_id=actor.user_id, status=status, note=note.strip(), finding=finding,
            pdf_id=blob.id))
        event = _event(session, actor, task, Step.AMEND, task.state,
                       [f"DiagnosticReport/{report.id}"])
        history.record(session, report, event)
        mail_row = _queue_report_mail(session, svc, scan.patient, report, pdf)
    log.info("report amended", extra={"report_id": report.id, "version": report.version_id})
    if mail_row is not None:
        outbox.deliver(session, svc.mail, [mail_row])
    return report
