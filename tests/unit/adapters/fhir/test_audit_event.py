from __future__ import annotations

import base64
from datetime import UTC, datetime

from adapters.fhir.audit_event import CLIENT_SYSTEM, CSSS_AUDIT, to_fhir_audit_event
from adapters.fhir.common import DCM
from tests.factories import emitted, row


def record(**fields):
    values = {"id": "aud-1", "type_code": "110110", "subtype_code": None, "action": "R",
              "recorded": datetime(2025, 3, 14, 9, tzinfo=UTC), "outcome": "0",
              "agent_reference": "Practitioner/doc-1", "agent_client_id": None,
              "agent_role": "doctor", "source_address": "10.0.0.8", "patient_id": "pat-1",
              "entities": ["Patient/pat-1", "ImagingStudy/scan-1"], "query": None,
              "description": None}
    return row(**{**values, **fields})


def test_a_record_read_names_the_agent_the_patient_and_the_resource():
    data = emitted(to_fhir_audit_event(record()), "AuditEvent")
    assert data["type"] == {"system": DCM, "code": "110110", "display": "Patient Record"}
    assert (data["action"], data["outcome"]) == ("R", "0")
    [agent] = data["agent"]
    assert agent["requestor"] is True
    assert agent["who"] == {"reference": "Practitioner/doc-1"}
    assert agent["role"] == [{"text": "doctor"}]
    assert agent["network"] == {"address": "10.0.0.8", "type": "2"}
    patient, study = data["entity"]  # the patient once, though it is also a target
    assert patient["what"] == {"reference": "Patient/pat-1"}
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")
    assert study["what"] == {"reference": "ImagingStudy/scan-1"}
    assert study["type"]["code"] == "2"


def test_a_login_failure_by_an_unknown_caller_uses_dicom_subtypes_and_a_description():
    data = emitted(to_fhir_audit_event(record(
        type_code="110114", subtype_code="110122", action="E", outcome="4",
        agent_reference=None, agent_role=None, source_address=None, patient_id=None,
        entities=[], description="wrong password")), "AuditEvent")
    assert data["subtype"] == [{"system": DCM, "code": "110122", "display": "Login"}]
    assert data["agent"] == [{"requestor": True, "who": {"display": "unidentified caller"}}]
    assert data["outcomeDesc"] == "wrong password"
    assert "entity" not in data


def test_a_system_client_is_an_identifier_and_our_own_codes_use_our_system():
    data = emitted(to_fhir_audit_event(record(
        agent_reference=None, agent_client_id="ris-7", subtype_code="otp-lockout")),
        "AuditEvent")
    assert data["agent"][0]["who"] == {
        "identifier": {"system": CLIENT_SYSTEM, "value": "ris-7"}, "display": "system client"}
    assert data["subtype"] == [{"system": CSSS_AUDIT, "code": "otp-lockout"}]


def test_a_search_carries_its_query_base64_and_a_web_page_is_named_not_referenced():
    data = emitted(to_fhir_audit_event(record(
        type_code="110112", action="E", patient_id=None,
        entities=["page:/doctor/worklist"], query="Patient?name=Mensah")), "AuditEvent")
    page, query = data["entity"]
    assert page == {"what": {"display": "web page /doctor/worklist"},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                             "code": "2"}}
    assert query["role"]["code"] == "24"
    assert base64.b64decode(query["query"]).decode() == "Patient?name=Mensah"


def test_audit_event_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(to_fhir_audit_event(record(query="Patient?_id=pat-1")), "AuditEvent"))
