"""OperationOutcome, Bundle and Parameters: the FHIR envelopes."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome

from adapters.fhir.narrative import narrative


def operation_outcome(code: str, diagnostics: str, *, severity: str = "error",
                      details: str | None = None, field: str | None = None
                      ) -> OperationOutcome:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if details:
        issue["details"] = {"text": details}
    if field:  # the parameter or element at fault
        issue["expression"] = [field]
    data = {"resourceType": "OperationOutcome", "issue": [issue]}
    return OperationOutcome.model_validate({**data, "text": narrative(data)})
