"""Audit records -> FHIR AuditEvent (DICOM audit codes, PS3.15 A.5, where they fit)."""

from __future__ import annotations

import base64
import re
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent

from adapters.fhir.common import DCM, instant, meta

# Codes that DICOM has no word for (second-factor events, lockouts) come from our system.
CSSS_AUDIT = "urn:csss-fhir:codesystem:audit-subtype"
DISPLAY = {
    "110110": "Patient Record", "110112": "Query", "110106": "Export",
    "110114": "User Authentication", "110122": "Login", "110123": "Logout",
}
SUBTYPE_SYSTEMS = {"110122": DCM, "110123": DCM}
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SECURITY_SOURCE = "http://terminology.hl7.org/CodeSystem/security-source-type"
CLIENT_SYSTEM = "urn:csss-fhir:client"
# A literal reference to one resource (optionally one version of it): `Type/id[/_history/n]`.
REFERENCE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")


def _coding(code: str) -> dict[str, Any]:
    system = DCM if code in DISPLAY else CSSS_AUDIT
    coding = {"system": SUBTYPE_SYSTEMS.get(code, system), "code": code}
    if code in DISPLAY:
        coding["display"] = DISPLAY[code]
    return coding


def _agent(row: Any) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True}
    if row.agent_reference:
        agent["who"] = {"reference": row.agent_reference}
    elif row.agent_client_id:
        agent["who"] = {"identifier": {"system": CLIENT_SYSTEM, "value": row.agent_client_id},
                        "display": "system client"}
    else:
        agent["who"] = {"display": "unidentified caller"}
    if row.agent_role:
        agent["role"] = [{"text": row.agent_role}]
    if row.source_address:
        agent["network"] = {"address": row.source_address, "type": "2"}
    return agent


def _entity(target: str) -> dict[str, Any]:
    """An entity the request touched. Only a real `Type/id` is a reference (`what`); a web
    page, a search (`Observation`) or an operation (`Patient/$validate`) is no resource, so
    it is named in `detail`, as the request path it was."""
    entity: dict[str, Any] = {"type": {"system": ENTITY_TYPE, "code": "2"}}
    if REFERENCE.fullmatch(target):
        entity["what"] = {"reference": target}
    elif target.startswith("page:"):
        entity["what"] = {"display": f"web page {target.removeprefix('page:')}"}
    else:
        entity["detail"] = [{"type": "request path", "valueString": target}]
    return entity


def to_fhir_audit_event(row: Any) -> AuditEvent:
    entities: list[dict[str, Any]] = []
    if row.patient_id:
        entities.append({"what": {"reference": f"Patient/{row.patient_id}"},
                         "type": {"system": ENTITY_TYPE, "code": "1"},
                         "role": {"system": OBJECT_ROLE, "code": "1"}})
    for target in row.entities:
        if target == f"Patient/{row.patient_id}":
            continue
        entities.append(_entity(target))
    if row.query:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2"},
                         "role": {"system": OBJECT_ROLE, "code": "24"},
                         "query": base64.b64encode(row.query.encode()).decode("ascii")})
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "meta": meta(row),
        "type": _coding(row.type_code),
        "action": row.action,
        "recorded": instant(row.recorded),
        "outcome": row.outcome,
        "agent": [_agent(row)],
        "source": {"site": "CSSS-FHIR", "observer": {"display": "CSSS-FHIR server"},
                   "type": [{"system": SECURITY_SOURCE, "code": "4"}]},
    }
    if row.subtype_code:
        resource["subtype"] = [_coding(row.subtype_code)]
    if row.description:
        resource["outcomeDesc"] = row.description
    if entities:
        resource["entity"] = entities
    return AuditEvent.model_validate(resource)
