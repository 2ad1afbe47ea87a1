from __future__ import annotations

from adapters.fhir.outcome import operation_outcome
from tests.factories import emitted


def test_an_outcome_carries_one_issue_with_code_severity_and_diagnostics():
    data = emitted(operation_outcome("conflict", "the scan is in state PENDING_AI"),
                   "OperationOutcome")
    assert data["issue"] == [{"severity": "error", "code": "conflict",
                              "diagnostics": "the scan is in state PENDING_AI"}]


def test_details_text_carries_a_machine_readable_reason():
    data = emitted(operation_outcome("security", "a one-time code is required",
                                     severity="warning", details="otp-required"),
                   "OperationOutcome")
    [issue] = data["issue"]
    assert issue["severity"] == "warning" and issue["details"] == {"text": "otp-required"}


def test_outcome_output_matches_the_hl7_schema(hl7_schema):
    hl7_schema(emitted(operation_outcome("invalid", "bad", details="why"), "OperationOutcome"))
