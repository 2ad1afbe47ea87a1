"""The adapters' output checked against HL7's official R4 JSON Schema, where it is present."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests import factories


@pytest.fixture
def hl7_schema() -> Callable[[dict], None]:
    """`hl7_schema(data)` validates FHIR JSON against ../shared/fhir/fhir.schema.json; the test
    is skipped, with the reason, on a machine without that file."""
    if not factories.SCHEMA_PATH.exists():
        pytest.skip(f"HL7's R4 JSON Schema is not at {factories.SCHEMA_PATH} (../shared/fhir); "
                    "the R4B models alone checked this output")
    return factories.schema_check
