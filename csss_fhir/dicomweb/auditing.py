"""The audit trail of /dicomweb: one AuditEvent per patient touched, as for /fhir reads.

The views name the scans they served or stored (`touched`); after the response this hook
records the request with `security.audit.record`, with the event types /fhir uses: query
(110112) for QIDO-RS, patient record read (110110, R) for WADO-RS, create (C) for STOW-RS.
A refused bearer token is recorded as a failed authentication, as on /fhir.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from csss_fhir.models import DicomResult, Scan, db
from csss_fhir.security import audit
from csss_fhir.security.actor import Actor

log = logging.getLogger(__name__)


def touched(scans: list[Scan | DicomResult], *, query: bool = False) -> None:
    """Note the scans (or results filed in their studies) this request serves or stores
    (their patients get the audit rows)."""
    buckets: dict[str | None, list[str]] = g.setdefault("dicomweb_touched", {})
    for scan in scans:
        study = scan.scan_id if isinstance(scan, DicomResult) else scan.id
        reference = f"ImagingStudy/{study}"
        if reference not in buckets.setdefault(scan.patient_id, []):
            buckets[scan.patient_id].append(reference)
    g.dicomweb_query = query


def record_request(response: Response) -> Response:
    """Record who touched which patient's studies in this /dicomweb request."""
    actor: Actor | None = g.get("csss_actor")
    status = response.status_code
    if actor is None and status != 401:
        return response  # refused before anyone was identified (406, 415, ...)
    outcome = (audit.SUCCESS if status < 400 else audit.MINOR_FAILURE if status < 500
               else audit.SERIOUS_FAILURE)
    description = f"{request.method} {request.url_rule.rule if request.url_rule else ''}"
    buckets = g.get("dicomweb_touched") or {None: [request.path.removeprefix("/dicomweb/")]}
    query = None
    if actor is None:
        event = audit.Event(audit.USER_AUTHENTICATION, "E", outcome,
                            description="bearer token refused")
    elif g.get("dicomweb_query"):
        event = audit.Event(audit.QUERY, "E", outcome, description=description)
        query = urlencode(list(request.args.items(multi=True)))
    elif request.method == "POST":
        event = audit.Event(audit.PATIENT_RECORD, "C", outcome, description=description)
    else:
        event = audit.Event(audit.PATIENT_RECORD, "R", outcome, description=description)
    try:
        db.session.rollback()  # the views committed their own work
        audit.record(db.session, event, actor=actor, entities_by_patient=buckets, query=query)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("audit event not written", extra={"path": request.path})
        if request.method == "GET" and status < 400:
            # Fail closed, as /fhir does: patient data leaves only with its audit record.
            return Response("the audit trail is unavailable; try again shortly", status=503,
                            content_type="text/plain; charset=utf-8")
    return response
