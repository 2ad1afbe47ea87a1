"""The audit trail: an AuditEvent for every sign-in, second-factor event and access to
patient data (read, search, write, PDF export), one per patient touched (IHE BALP).

Sign-in events are recorded by `authentication`; FHIR requests by an `after_request` hook
that sees every /fhir route (a new route is audited without being told). Audit rows hold
references and codes only: never passwords, codes, tokens or names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import orjson
from flask import Flask, Response, g, has_request_context, request
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from csss_fhir import history
from csss_fhir.models import AuditRecord, Blob, Report, Scan, User, WorkflowEvent, db
from csss_fhir.security import access
from csss_fhir.security.actor import Actor

log = logging.getLogger(__name__)

# DICOM PS3.15 A.5 event IDs and types.
PATIENT_RECORD = "110110"
QUERY = "110112"
EXPORT = "110106"
USER_AUTHENTICATION = "110114"
LOGIN = "110122"
LOGOUT = "110123"
# Ours: DICOM has no word for these.
OTP_ISSUED = "otp-issued"
OTP_FAILED = "otp-failed"
LOCKED = "account-locked"

SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = "0", "4", "8"
PATIENT_REFERENCE_FIELDS = ("subject", "patient", "for")
MAX_QUERY = 2000


@dataclass(frozen=True)
class Event:
    type_code: str
    action: str  # C R U D E
    outcome: str = SUCCESS
    subtype_code: str | None = None
    description: str | None = None


def user_reference(user: User) -> str:
    if user.patient_id:
        return f"Patient/{user.patient_id}"
    return f"Practitioner/{user.id}"


def _columns(event: Event, actor: Actor | None, user: User | None,
             entities_by_patient: dict[str | None, list[str]] | None, query: str | None,
             address: str | None = None) -> list[dict[str, object]]:
    """The column values of the audit rows for one event, one row per patient. `address`:
    the agent's network address when it is not the request's client (a job's)."""
    reference = actor.reference if actor else (user_reference(user) if user else None)
    role = actor.role if actor else (user.role if user else None)
    if address is None and has_request_context():
        address = request.remote_addr
    buckets = entities_by_patient or {None: []}
    return [
        {"type_code": event.type_code, "subtype_code": event.subtype_code,
         "action": event.action, "outcome": event.outcome, "agent_reference": reference,
         "agent_client_id": actor.client_id if actor else None, "agent_role": role,
         "source_address": (address or "")[:64] or None, "patient_id": patient_id,
         "entities": sorted(set(entities))[:200],
         "query": query[:MAX_QUERY] if query else None,
         "description": (event.description or "")[:200] or None}
        for patient_id, entities in buckets.items()
    ]


def record(session: Session, event: Event, *, actor: Actor | None = None,
           user: User | None = None, entities_by_patient: dict[str | None, list[str]] | None
           = None, query: str | None = None, address: str | None = None
           ) -> list[AuditRecord]:
    """Add the audit rows for one event (one per patient); the caller commits. `address`:
    the agent's network address when it is not the request's client (a job's)."""
    rows = [AuditRecord(**values)
            for values in _columns(event, actor, user, entities_by_patient, query, address)]
    session.add_all(rows)
    history.record(session, *rows)
    return rows


def write(session: Session, event: Event, *, actor: Actor | None = None,
          entities_by_patient: dict[str | None, list[str]] | None = None,
          query: str | None = None) -> None:
    """Insert the audit rows for one event with one Core INSERT; the caller commits.

    What `record` does, less the ORM: no entities, no flush, no identity map. The hook that
    audits every FHIR request uses it: the rows are never read back in the request, and an
    AuditEvent has one version, the row itself (history.WRITE_ONCE), so nothing else is kept.
    """
    session.execute(insert(AuditRecord.__table__),
                    _columns(event, actor, None, entities_by_patient, query))


def recent_records(session: Session, actor: Actor, *, agent: str = "", patient: str = "",
                   type_code: str = "", since: datetime | None = None, limit: int = 200
                   ) -> list[AuditRecord]:
    """The newest audit rows first: those whose agent reference contains `agent`, about
    `patient` ("Patient/<id>" or the bare id), of `type_code`, recorded at or after `since`.

    Raises:
        AccessDeniedError: the actor may not read the audit trail.
    """
    access.require_read(actor, access.AUDIT)
    statement = select(AuditRecord).order_by(AuditRecord.recorded.desc())
    if agent:
        statement = statement.where(AuditRecord.agent_reference.contains(agent))
    if patient:
        statement = statement.where(AuditRecord.patient_id == patient.removeprefix("Patient/"))
    if type_code:
        statement = statement.where(AuditRecord.type_code == type_code)
    if since is not None:
        statement = statement.where(AuditRecord.recorded >= since)
    return list(session.scalars(statement.limit(limit)))


# --- the /fhir request hook --------------------------------------------------------------

SEARCH_ENDPOINTS = frozenset({"fhir.search_get", "fhir.search_post"})
NOT_AUDITED = frozenset({"fhir.metadata"})


def init_app(app: Flask) -> None:
    app.after_request(audit_fhir_request)


def audit_fhir_request(response: Response) -> Response:
    """Record who touched which patient's data in this /fhir request (or UI page)."""
    if (request.endpoint is None or request.endpoint in NOT_AUDITED
            or request.method == "OPTIONS"):
        return response
    if not request.path.startswith("/fhir/"):
        return _audit_page(response)
    actor: Actor | None = g.get("csss_actor")
    status = response.status_code
    if actor is None and status != 401:
        return response  # refused before anyone was identified (406, 415, ...)
    outcome = SUCCESS if status < 400 else MINOR_FAILURE if status < 500 else SERIOUS_FAILURE
    try:
        if not _nothing_to_roll_back(db.session, status):
            # The route committed its own work; whatever is left belongs to a refused
            # request.
            db.session.rollback()
        event, buckets, query = _describe(response, actor, outcome)
        write(db.session, event, actor=actor, entities_by_patient=buckets, query=query)
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("audit event not written", extra={"path": request.path})
        if request.method in ("GET", "HEAD") and status < 400:
            # Fail closed: patient data leaves only with its audit record.
            from csss_fhir.api.outcomes import outcome_response

            return outcome_response(503, "transient",
                                    "the audit trail is unavailable; try again shortly")
    return response


def _nothing_to_roll_back(session: Session, status: int) -> bool:
    """Whether the audit rows may join the request's open transaction: after a success
    whose route committed its work (or, a read, had none) and that holds no change since
    (none pending, none flushed), there is nothing to roll back, and writing the audit in
    the same transaction saves a rollback and a second BEGIN (and the pool's pre-ping of a
    second checkout) on every request.

    Not on SQLite: there a read transaction that then writes fails at once with "database is
    locked" if another connection committed since it began (WAL snapshots), which with
    several workers auditing every read is nearly always; ending the read first avoids it.
    """
    return (status < 400 and not session.info.get(_WROTE) and not session.new
            and not session.dirty and not session.deleted
            and session.get_bind().dialect.name != "sqlite")


_WROTE = "csss_audit_wrote"  # Session.info key: this transaction flushed a change


@sqlalchemy_event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context: object) -> None:
    session.info[_WROTE] = True


@sqlalchemy_event.listens_for(Session, "after_transaction_end")
def _forget_flush(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: committed or not
        session.info.pop(_WROTE, None)


def _describe(response: Response, actor: Actor | None, outcome: str
              ) -> tuple[Event, dict[str | None, list[str]], str | None]:
    description = f"{request.method} {request.url_rule.rule if request.url_rule else ''}"
    if actor is None:
        return (Event(USER_AUTHENTICATION, "E", outcome, description="bearer token refused"),
                {None: []}, None)
    endpoint = request.endpoint or ""
    query = None
    if endpoint in SEARCH_ENDPOINTS:
        event = Event(QUERY, "E", outcome, description=description)
        pairs = list(request.args.items(multi=True))
        if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
            pairs += list(request.form.items(multi=True))
        query = urlencode(pairs)
    elif request.method in ("GET", "HEAD"):
        event = Event(PATIENT_RECORD, "R", outcome, description=description)
    elif endpoint.endswith(".upload") or endpoint == "fhir.create":
        event = Event(PATIENT_RECORD, "C", outcome, description=description)
    else:
        event = Event(PATIENT_RECORD, "E", outcome, description=description)
    target = request.path.removeprefix("/fhir/")
    if outcome != SUCCESS:
        return event, {None: [target]}, query
    if request.view_args and request.view_args.get("resource_type") == "Binary":
        blob = db.session.get(Blob, request.view_args.get("resource_id"))
        if blob is not None and blob.content_type == "application/pdf":
            event = Event(EXPORT, "R", outcome, description="PDF report read")
        return event, {blob.patient_id if blob else None: [f"Binary/{blob.id if blob else ''}"]
                       }, query
    return event, _patients_in(response) or {None: [target]}, query


def _patients_in(response: Response) -> dict[str | None, list[str]]:
    """Which patients' resources this response carries, by reading what it sends."""
    if response.mimetype not in ("application/fhir+json", "application/json"):
        return {}
    try:
        data = orjson.loads(response.get_data())
    except ValueError:  # orjson.JSONDecodeError is one
        return {}
    if not isinstance(data, dict):
        return {}
    resources = ([e.get("resource") for e in data.get("entry", [])]
                 if data.get("resourceType") == "Bundle" else [data])
    buckets: dict[str | None, list[str]] = {}
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("resourceType") == "OperationOutcome":
            continue
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        for patient_id in _patients_of(resource) or [None]:
            buckets.setdefault(patient_id, []).append(ref)
    return buckets


def _patients_of(resource: dict) -> Iterable[str]:
    kind = resource.get("resourceType")
    if kind == "Patient":
        return [resource["id"]]
    if kind == "Provenance":
        event = db.session.get(WorkflowEvent, resource.get("id"))
        return [event.patient_id] if event else []
    found = []
    for name in PATIENT_REFERENCE_FIELDS:
        value = resource.get(name)
        if isinstance(value, dict) and str(value.get("reference", "")).startswith("Patient/"):
            found.append(value["reference"].removeprefix("Patient/"))
    if kind == "AuditEvent":
        for entity in resource.get("entity", []):
            ref = str(entity.get("what", {}).get("reference", ""))
            if ref.startswith("Patient/"):
                found.append(ref.removeprefix("Patient/"))
    return found


# --- the web UI --------------------------------------------------------------------------

# A page's patient, from the ids in its URL (lists of many patients name none).
PAGE_ROWS = {"study_id": (Scan, "ImagingStudy"), "report_id": (Report, "DiagnosticReport")}


def _audit_page(response: Response) -> Response:
    """A UI page seen or a form posted by a signed-in user (sign-in itself is audited in
    `authentication`). The page's patient comes from its URL, or is the patient themself."""
    actor: Actor | None = g.get("csss_actor")
    if actor is None or request.blueprint in (None, "auth", "health", "well_known",
                                                      "dicomweb"):  # audits itself
        return response
    status = response.status_code
    outcome = SUCCESS if status < 400 else MINOR_FAILURE if status < 500 else SERIOUS_FAILURE
    patient_id = actor.patient_id if actor.is_patient else None
    entities = [f"page:{request.path}"[:200]]
    for name, (model, resource_type) in PAGE_ROWS.items():
        row_id = (request.view_args or {}).get(name)
        if row_id:
            entities.append(f"{resource_type}/{row_id}"[:200])
            row = db.session.get(model, row_id)
            if patient_id is None and row is not None:
                patient_id = row.patient_id
    action = "R" if request.method in ("GET", "HEAD") else "E"
    event = Event(PATIENT_RECORD, action, outcome,
                  description=f"{request.method} {request.url_rule.rule}"[:200])
    try:
        db.session.rollback()
        record(db.session, event, actor=actor,
               entities_by_patient={patient_id: entities})
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.exception("audit event not written", extra={"path": request.path})
    return response
