"""Patient <-> FHIR Patient."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.patient import Patient as FhirPatient

from adapters.fhir.common import MRN_SYSTEM, SERVER_OWNED, fhir_date, merge_submitted, meta
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
    active: bool = True
    # The resource as the client sent it (less id, meta, text): the elements the columns
    # above do not model (more identifiers, telecoms, addresses, prefixes, names...).
    resource_json: dict[str, Any] | None = None


def to_fhir_patient(patient: Any) -> FhirPatient:
    submitted = getattr(patient, "resource_json", None)
    if submitted:
        return FhirPatient.model_validate(merge_submitted(_columns(patient, submitted),
                                                          submitted))
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


def _mrn_index(identifiers: list[dict[str, Any]]) -> int:
    """Which identifier we store as the MRN (the one `identifier` searches): the first typed
    v2-0203 `MR` with a value, else the first with a value; len() when none has a value."""
    def is_mr(identifier: dict[str, Any]) -> bool:
        return any(c.get("code") == "MR"
                   for c in (identifier.get("type") or {}).get("coding") or [])
    with_value = [i for i, identifier in enumerate(identifiers) if identifier.get("value")]
    typed = [i for i in with_value if is_mr(identifiers[i])]
    return (typed or with_value or [len(identifiers)])[0]


def _index_of(items: list[dict[str, Any]], wanted: Any) -> int:
    return next((i for i, item in enumerate(items) if wanted(item)), len(items))


def _columns(patient: Any, submitted: dict[str, Any]) -> dict[str, Any]:
    """What the columns hold, placed where the client's resource holds it (for
    `merge_submitted`): the first name, the identifier and the e-mail we store. An element
    the columns still hold as sent keeps the client's own form (`given: ["Mary Ann"]`)."""
    data: dict[str, Any] = {"resourceType": "Patient", "id": patient.id,
                            "meta": meta(patient), "active": patient.active}
    names = submitted.get("name") or [{}]
    sent = names[0]
    name: dict[str, Any] = {}
    if (sent.get("family") or "") != patient.family_name:
        name["family"] = patient.family_name or None
    if " ".join(sent.get("given") or []) != patient.given_names and not (
            not sent.get("given") and sent.get("text") == patient.given_names):
        name["given"] = patient.given_names.split() or None
        name["text"] = patient.display_name or None  # the sent text no longer says it
    data["name"] = [name]
    if patient.mrn:
        identifiers = submitted.get("identifier") or []
        at = _mrn_index(identifiers)
        data["identifier"] = [{}] * at + [{"system": patient.mrn_system or MRN_SYSTEM,
                                           "value": patient.mrn}]
    if patient.email:
        telecoms = submitted.get("telecom") or []
        at = _index_of(telecoms, lambda t: t.get("system") == "email" and bool(t.get("value")))
        data["telecom"] = [{}] * at + [{"system": "email", "value": patient.email}]
    if patient.gender:
        data["gender"] = patient.gender
    if patient.birth_date and submitted.get("birthDate") != fhir_date(patient.birth_date):
        data["birthDate"] = fhir_date(patient.birth_date)
    return data


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
    identifiers = resource.identifier or []
    at = _mrn_index([i.model_dump(exclude_none=True) for i in identifiers])
    if at < len(identifiers):
        mrn, mrn_system = identifiers[at].value, identifiers[at].system or MRN_SYSTEM
    return PatientData(
        family_name=family.strip(), given_names=given.strip(), birth_date=resource.birthDate,
        gender=resource.gender, email=email, mrn=mrn, mrn_system=mrn_system,
        active=resource.active is not False,
        resource_json={k: v for k, v in body.items() if k not in SERVER_OWNED},
    )
