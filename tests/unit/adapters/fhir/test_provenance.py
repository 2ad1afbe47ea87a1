from __future__ import annotations

from datetime import UTC, datetime

from adapters.fhir.common import DATA_OPERATION, PROVENANCE_PARTICIPANT
from adapters.fhir.provenance import ResultChain, to_fhir_provenance
from tests.factories import emitted, row


def event(step: str, **fields):
    values = {"id": f"prov-{step}", "step": step, "actor_reference": "Practitioner/u-1",
              "actor_client": None, "device_id": None, "targets": ["Observation/obs-1"],
              "from_state": "AI_ANALYZED", "to_state": "DOCTOR_VERIFIED",
              "created_at": datetime(2025, 3, 14, 9, tzinfo=UTC)}
    return row(**{**values, **fields})


def agents(data: dict) -> list[tuple[str, dict]]:
    return [(a["type"]["coding"][0]["code"], a["who"]) for a in data["agent"]]


def test_a_step_names_its_actor_with_the_steps_participant_type():
    data = emitted(to_fhir_provenance(event("verify")), "Provenance")
    assert agents(data) == [("verifier", {"reference": "Practitioner/u-1"})]
    assert data["agent"][0]["type"]["coding"][0]["system"] == PROVENANCE_PARTICIPANT
    assert data["target"] == [{"reference": "Observation/obs-1"}]
    assert data["activity"]["coding"] == [{"system": DATA_OPERATION, "code": "UPDATE"}]
    assert data["activity"]["text"] == "verify: AI_ANALYZED -> DOCTOR_VERIFIED"
    assert "entity" not in data


def test_an_upload_is_a_create_by_its_enterer():
    data = emitted(to_fhir_provenance(event("upload", from_state=None,
                                            to_state="PENDING_AI")), "Provenance")
    assert data["activity"]["coding"][0]["code"] == "CREATE"
    assert data["activity"]["text"] == "upload: - -> PENDING_AI"
    assert agents(data)[0][0] == "enterer"


def test_classification_by_a_system_client_names_the_client_and_the_device_as_author():
    data = emitted(to_fhir_provenance(event("classify", actor_reference=None,
                                            actor_client="ris-7", device_id="dev-1")),
                   "Provenance")
    assert agents(data) == [("performer", {"display": "system client ris-7"}),
                            ("author", {"reference": "Device/dev-1"})]


def test_an_approval_names_attester_verifier_device_and_its_sources():
    chain = ResultChain(device_id="dev-1", verifier_reference="Practitioner/doc-1",
                        sources=("Observation/obs-ai", "ImagingStudy/scan-1"))
    data = emitted(to_fhir_provenance(event("approve", actor_reference="Practitioner/adm-1"),
                                      chain), "Provenance")
    assert agents(data) == [("attester", {"reference": "Practitioner/adm-1"}),
                            ("verifier", {"reference": "Practitioner/doc-1"}),
                            ("author", {"reference": "Device/dev-1"})]
    assert data["entity"] == [{"role": "source", "what": {"reference": "Observation/obs-ai"}},
                              {"role": "source", "what": {"reference": "ImagingStudy/scan-1"}}]


def test_only_an_approval_names_the_chains_verifier():
    chain = ResultChain(verifier_reference="Practitioner/doc-1")
    data = emitted(to_fhir_provenance(event("pharmacy-review"), chain), "Provenance")
    assert agents(data) == [("performer", {"reference": "Practitioner/u-1"})]


def test_provenance_output_matches_the_hl7_schema(hl7_schema):
    chain = ResultChain(device_id="dev-1", verifier_reference="Practitioner/doc-1",
                        sources=("Observation/obs-ai",))
    hl7_schema(emitted(to_fhir_provenance(event("approve"), chain), "Provenance"))
