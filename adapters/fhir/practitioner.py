"""Staff users -> FHIR Practitioner and PractitionerRole."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole

from adapters.fhir.common import meta, reference

ROLE_CODES = {
    "doctor": ("doctor", "Doctor"),
    "pharmacist": ("pharmacist", "Pharmacist"),
    "admin": ("ict", "ICT professional"),
}
ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/practitioner-role"


def to_fhir_practitioner(user: Any) -> Practitioner:
    return Practitioner.model_validate({
        "resourceType": "Practitioner",
        "id": user.id,
        "meta": meta(user),
        "active": user.active,
        "name": [{"text": user.name}],
        "telecom": [{"system": "email", "value": user.email, "use": "work"}],
    })


def to_fhir_practitioner_role(user: Any) -> PractitionerRole:
    code, display = ROLE_CODES[user.role]
    return PractitionerRole.model_validate({
        "resourceType": "PractitionerRole",
        "id": user.id,
        "meta": meta(user),
        "active": user.active,
        "practitioner": reference("Practitioner", user.id, user.name),
        "code": [{"coding": [{"system": ROLE_SYSTEM, "code": code, "display": display}],
                  "text": user.role}],
    })
