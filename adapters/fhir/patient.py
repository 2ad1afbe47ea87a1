"""Patient <-> FHIR Patient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.patient import Patient as FhirPatient

from adapters.fhir.common import MRN_SYSTEM, fhir_date, meta
from adapters.fhir.validation import parse_resource
from csss_fhir.errors import ResourceValidationError

# FHIR R4 AdministrativeGender, the required binding of Patient.gender, in its own order.
# The one list of genders: the FHIR API, `csss users create` and the admin form use it.
GENDERS = ("male", "female", "other", "unknown")


@dataclass(frozen=True)
class PatientData:
    family_name: str
    given_names: str
    birth_date: date | None
    gender: str | None
    email: str | None
    mrn: str | None
    mrn_system: str | None


def to_fhir_patient(patient: Any) -> FhirPatient:
    data: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.id,
        "meta": meta(patient),
        "active": patient.active,
        "name": [{
            "use": "official",
            "text": patient.display_name or None,
            "family": patient.family_name or None,
            "given": patient.given_names.split() or None,
        }],
    }
    if patient.mrn:
        data["identifier"] = [{
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "MR"}]},
            "system": patient.mrn_system or MRN_SYSTEM,
            "value": patient.mrn,
        }]
    if patient.gender:
        data["gender"] = patient.gender
    if patient.birth_date:
        data["birthDate"] = fhir_date(patient.birth_date)
    if patient.email:
        data["telecom"] = [{"system": "email", "value": patient.email}]
    data["name"][0] = {k: v for k, v in data["name"][0].items() if v}
    return FhirPatient.model_validate(data)


def from_fhir_patient(body: Any) -> PatientData:
    """Validate a client's Patient and take what we store.

    Raises:
        ResourceValidationError: not a valid FHIR Patient, or no name.
    """
    resource = parse_resource(body, "Patient")
    if resource.gender is not None and resource.gender not in GENDERS:
        # A required binding, which the R4B models do not enforce themselves.
        raise ResourceValidationError(
            f"Patient.gender must be one of {', '.join(GENDERS)}")
    names = resource.name or []
    if not names or not (names[0].family or names[0].given or names[0].text):
        raise ResourceValidationError("Patient.name is required (family and/or given)")
    name = names[0]
    family = name.family or ""
    given = " ".join(name.given or [])
    if not family and not given and name.text:
        given = name.text
    email = next((t.value for t in resource.telecom or [] if t.system == "email" and t.value),
                 None)
    mrn = mrn_system = None
    for identifier in resource.identifier or []:
        if identifier.value:
            mrn, mrn_system = identifier.value, identifier.system or MRN_SYSTEM
            break
    return PatientData(
        family_name=family.strip(), given_names=given.strip(), birth_date=resource.birthDate,
        gender=resource.gender, email=email, mrn=mrn, mrn_system=mrn_system,
    )
