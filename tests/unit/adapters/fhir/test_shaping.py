from __future__ import annotations

import pytest

from adapters.fhir.audit_event import to_fhir_audit_event
from adapters.fhir.shaping import SUBSETTED, shape
from tests.factories import emitted
from tests.unit.adapters.fhir.test_audit_event import record


@pytest.mark.parametrize(("summary", "elements"), [("true", None), ("text", None),
                                                   (None, ("id",))])
def test_a_cut_keeps_the_mandatory_complex_elements_so_it_still_parses(summary, elements):
    # AuditEvent requires `type`, `agent` and `source` (1..1 / 1..*): models, not primitives.
    cut = emitted(shape(to_fhir_audit_event(record()), summary=summary, elements=elements),
                  "AuditEvent")
    assert {"type", "agent", "source"} <= set(cut)
    assert SUBSETTED in cut["meta"]["tag"]
    if summary == "text" or elements:
        assert "entity" not in cut  # optional, not in the summary, not asked for


def test_a_cut_keeps_a_mandatory_choice_of_type():
    from adapters.fhir.validation import model_class

    request = model_class("MedicationRequest").model_validate({
        "resourceType": "MedicationRequest", "id": "mr-1", "status": "active",
        "intent": "order", "medicationCodeableConcept": {"text": "Amoxicillin"},
        "subject": {"reference": "Patient/p-1"}, "note": [{"text": "with food"}]})
    cut = emitted(shape(request, elements=("id",)), "MedicationRequest")
    assert cut["medicationCodeableConcept"] == {"text": "Amoxicillin"}  # medication[x] 1..1
    assert "note" not in cut
