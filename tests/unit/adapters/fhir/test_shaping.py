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
