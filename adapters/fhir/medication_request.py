"""Prescriptions <-> FHIR MedicationRequest.

The dosage (`dosageInstruction`, `dispenseRequest`) is kept as the client sent it and served
back unchanged; its text summary (dose, route, frequency, duration) is for the PDF and pages.
Formulary warnings are served the FHIR way: each is a contained DetectedIssue that
`MedicationRequest.detectedIssue` references, with the pharmacist's override as its
`mitigation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from adapters.fhir.common import (
    SERVER_OWNED,
    instant,
    merge_submitted,
    meta,
    parse_reference,
    reference,
)
from adapters.fhir.validation import parse_resource
from csss_fhir.errors import InvalidInputError, ResourceValidationError


@dataclass(frozen=True)
class PrescriptionData:
    patient_id: str
    scan_id: str
    medication: str
    medication_code: dict | None
    dose: str | None
    route: str | None
    frequency: str | None
    duration: str | None
    dosage_text: str | None
    note: str | None
    dosage_instruction: list[dict] | None = None  # as sent
    dispense_request: dict | None = None  # as sent
    status: str = "active"
    status_reason: str | None = None
    intent: str = "order"
    authored_on: datetime | None = None  # None: now
    # The resource as the client sent it (less id, meta, text), served back merged.
    resource_json: dict[str, Any] | None = None


# The statuses a new prescription may have; the rest describe what happens to it later
# (workflow/prescriptions.py: a correction keeps it active, a cancellation ends it).
CREATE_STATUSES = ("active", "draft")


ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# Statuses a client may set: active (a correction), or one of the two cancellations.
STATUSES = ("active", "draft", "cancelled", "entered-in-error")
PERIOD_WORDS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week",
                "mo": "month", "a": "year"}

def _quantity_text(quantity: Any) -> str | None:
    if quantity is None or quantity.value is None:
        return None
    unit = quantity.unit or quantity.code or ""
    return f"{float(quantity.value):g} {unit}".strip()


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return coding.display or coding.code
    return None


def timing_text(repeat: Any) -> str | None:
    """timing.repeat in words: "3 times a day", "every 8 hours"."""
    if repeat is None or repeat.period is None:
        return None
    frequency = repeat.frequency or 1
    unit = PERIOD_WORDS.get(repeat.periodUnit or "d", repeat.periodUnit or "")
    period = float(repeat.period)
    if frequency == 1:
        return f"every {unit}" if period == 1 else f"every {period:g} {unit}s"
    times = "twice" if frequency == 2 else f"{frequency} times"
    return f"{times} a {unit}" if period == 1 else f"{times} every {period:g} {unit}s"


def from_fhir_medication_request(body: Any) -> PrescriptionData:
    """Validate a client's MedicationRequest and take what we store.

    Raises:
        ResourceValidationError: invalid FHIR, or missing subject / supportingInformation
            ImagingStudy / medication, or a status other than active, draft, cancelled or
            entered-in-error.
    """
    resource = parse_resource(body, "MedicationRequest")
    if resource.status not in STATUSES:
        raise ResourceValidationError(
            f"MedicationRequest.status is {resource.status!r}; this server takes "
            f"{', '.join(STATUSES)} (cancel with cancelled or entered-in-error)",
            expression="MedicationRequest.status")
    subject = resource.subject.model_dump() if resource.subject else None
    patient_id = parse_reference(subject, "Patient")
    if not patient_id:
        raise ResourceValidationError("MedicationRequest.subject must reference a Patient")
    scan_id = next(
        (sid for ref in resource.supportingInformation or []
         if (sid := parse_reference(ref.model_dump(), "ImagingStudy"))),
        None,
    )
    if not scan_id:
        raise ResourceValidationError(
            "MedicationRequest.supportingInformation must reference the ImagingStudy "
            "this prescription follows"
        )
    concept = resource.medicationCodeableConcept
    medication = _concept_text(concept)
    if not medication:
        raise ResourceValidationError(
            "MedicationRequest.medicationCodeableConcept with a text or coding is required"
        )
    dose = route = frequency = duration = dosage_text = None
    if resource.dosageInstruction:
        dosage = resource.dosageInstruction[0]
        dosage_text = dosage.text
        route = _concept_text(dosage.route)
        if dosage.doseAndRate:
            dose = _quantity_text(dosage.doseAndRate[0].doseQuantity)
        if dosage.timing:
            frequency = _concept_text(dosage.timing.code) or timing_text(dosage.timing.repeat)
            if dosage.timing.repeat and dosage.timing.repeat.boundsDuration:
                duration = _quantity_text(dosage.timing.repeat.boundsDuration)
    if duration is None and resource.dispenseRequest and \
            resource.dispenseRequest.expectedSupplyDuration:
        duration = _quantity_text(resource.dispenseRequest.expectedSupplyDuration)
    note = "\n".join(n.text for n in resource.note or [] if n.text) or None
    codings = [c.model_dump(exclude_none=True) for c in (concept.coding or [])]
    status_reason = _concept_text(resource.statusReason)
    authored = resource.authoredOn
    return PrescriptionData(
        patient_id=patient_id, scan_id=scan_id, medication=medication,
        medication_code={"coding": codings} if codings else None,
        dose=dose, route=route, frequency=frequency, duration=duration,
        dosage_text=dosage_text, note=note,
        dosage_instruction=list(body["dosageInstruction"]) if body.get("dosageInstruction")
        else None,
        dispense_request=body.get("dispenseRequest") or None,
        status=resource.status, status_reason=status_reason, intent=resource.intent,
        authored_on=authored if isinstance(authored, datetime) and authored.tzinfo else None,
        resource_json={k: v for k, v in body.items() if k not in SERVER_OWNED},
    )


def _split_quantity(text: str | None) -> dict[str, Any] | None:
    """"500 mg" -> a Quantity; free text that is not "<number> <unit>" gives None."""
    if not text:
        return None
    value, _, unit = text.partition(" ")
    try:
        number = float(value)
    except ValueError:
        return None
    quantity: dict[str, Any] = {"value": number}
    if unit:
        quantity["unit"] = unit
    return quantity


def dosage_summary(prescription: Any) -> str:
    parts = [prescription.dose, prescription.route, prescription.frequency]
    text = " ".join(p for p in parts if p)
    if prescription.duration:
        text += f" for {prescription.duration}"
    return prescription.dosage_text or text or "as directed"


def _dosage_from_text(prescription: Any) -> dict[str, Any]:
    """A Dosage from the text columns, for prescriptions stored before doses were kept."""
    dosage: dict[str, Any] = {"text": dosage_summary(prescription)}
    if prescription.route:
        dosage["route"] = {"text": prescription.route}
    timing: dict[str, Any] = {}
    if prescription.frequency:
        timing["code"] = {"text": prescription.frequency}
    if (bounds := _split_quantity(prescription.duration)) is not None:
        timing["repeat"] = {"boundsDuration": bounds}
    if timing:
        dosage["timing"] = timing
    if (dose := _split_quantity(prescription.dose)) is not None:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    return dosage


def _detected_issues(prescription: Any) -> list[dict[str, Any]]:
    """Each formulary warning as a DetectedIssue, to be contained in the MedicationRequest."""
    issues = []
    for number, warning in enumerate(prescription.warnings or [], start=1):
        issue: dict[str, Any] = {
            "resourceType": "DetectedIssue", "id": f"dose-{number}", "status": "final",
            "code": {"coding": [{"system": ACT_CODE, "code": warning["code"]}],
                     "text": "Formulary dose warning"},
            "severity": "moderate" if warning["code"] == "DOSE" else "high",  # unchecked
            "patient": reference("Patient", prescription.patient_id),
            "implicated": [reference("MedicationRequest", prescription.id)],
            "detail": warning["message"],
        }
        if prescription.override_reason:
            issue["mitigation"] = [{"action": {"text": "Overridden by the pharmacist: "
                                               + prescription.override_reason}}]
        issues.append(issue)
    return issues


def to_fhir_medication_request(prescription: Any) -> MedicationRequest:
    dosages = prescription.dosage_instruction or [_dosage_from_text(prescription)]
    concept = dict(prescription.medication_code or {})
    concept["text"] = prescription.medication
    data: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": prescription.id,
        "meta": meta(prescription),
        "status": prescription.status,
        "intent": prescription.intent,
        "medicationCodeableConcept": concept,
        "subject": reference("Patient", prescription.patient_id),
        "authoredOn": instant(prescription.authored_on),
        "requester": reference("Practitioner", prescription.pharmacist_id),
        "supportingInformation": [reference("ImagingStudy", prescription.scan_id)],
        "dosageInstruction": dosages,
    }
    if prescription.dispense_request:
        data["dispenseRequest"] = prescription.dispense_request
    if prescription.status_reason:
        data["statusReason"] = {"text": prescription.status_reason}
    if issues := _detected_issues(prescription):
        data["contained"] = issues
        data["detectedIssue"] = [{"reference": f"#{issue['id']}"} for issue in issues]
    if prescription.note:
        data["note"] = [{"text": prescription.note}]
    submitted = getattr(prescription, "resource_json", None)
    if submitted and "authoredOn" in submitted:
        del data["authoredOn"]  # the client's, at its own precision (set once, never edited)
    return MedicationRequest.model_validate(merge_submitted(data, submitted))


# The web form's choices, as FHIR codes: the form builds the same MedicationRequest a FHIR
# client would send, so both take one path (from_fhir_medication_request).
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ROUTES = {"26643006": "Oral route", "47625008": "Intravenous route",
          "78421000": "Intramuscular route", "34206005": "Subcutaneous route",
          "447694001": "Respiratory tract route", "6064005": "Topical route"}
DOSE_UNITS = {"mg": "mg", "g": "g", "ug": "mcg"}  # UCUM code -> the unit people read
FREQUENCIES = {  # form value -> (frequency, period, periodUnit), in the form's order
    "1/1/d": (1, 1, "d"), "2/1/d": (2, 1, "d"), "3/1/d": (3, 1, "d"), "4/1/d": (4, 1, "d"),
    "1/4/h": (1, 4, "h"), "1/6/h": (1, 6, "h"), "1/8/h": (1, 8, "h"), "1/12/h": (1, 12, "h"),
}
FORM_FIELDS = ("drug", "dose", "unit", "route", "frequency", "duration", "notes")


def _form_number(values: Mapping[str, str], name: str, words: str) -> float | None:
    text = values.get(name, "").strip().replace(",", ".")
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not 0 < number < 1_000_000:
        raise InvalidInputError(f"the {words} must be a positive number, such as 500; "
                                f"it is {text[:20]!r}", field=name)
    return int(number) if number.is_integer() else number


def medication_request_from_form(values: Mapping[str, str], *, patient_id: str, scan_id: str,
                                 resource_id: str | None = None) -> dict[str, Any]:
    """The MedicationRequest JSON the pharmacist's form describes.

    Raises:
        InvalidInputError: no drug name, a dose or duration that is not a positive number,
            or a unit, route or frequency the form does not offer.
    """
    drug = values.get("drug", "").strip()
    if not drug:
        raise InvalidInputError("the drug name is required", field="drug")
    dosage: dict[str, Any] = {"sequence": 1}
    dose = _form_number(values, "dose", "dose")
    unit = values.get("unit") or "mg"
    if unit not in DOSE_UNITS:
        raise InvalidInputError(f"the dose unit must be one of {', '.join(DOSE_UNITS)}",
                                field="unit")
    if dose is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {
            "value": dose, "unit": DOSE_UNITS[unit], "system": UCUM, "code": unit}}]
    if route := values.get("route"):
        if route not in ROUTES:
            raise InvalidInputError("choose the route from the list", field="route")
        dosage["route"] = {"coding": [{"system": SNOMED, "code": route,
                                       "display": ROUTES[route]}]}
    repeat: dict[str, Any] = {}
    if frequency := values.get("frequency"):
        if frequency not in FREQUENCIES:
            raise InvalidInputError("choose how often from the list", field="frequency")
        repeat.update(zip(("frequency", "period", "periodUnit"), FREQUENCIES[frequency],
                          strict=True))
    if (days := _form_number(values, "duration", "duration in days")) is not None:
        repeat["boundsDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
    if repeat:
        dosage["timing"] = {"repeat": repeat}
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"text": drug},
        "subject": {"reference": f"Patient/{patient_id}"},
        "supportingInformation": [{"reference": f"ImagingStudy/{scan_id}"}],
        "dosageInstruction": [dosage],
    }
    if resource_id:
        body["id"] = resource_id
    if notes := values.get("notes", "").strip():
        body["note"] = [{"text": notes}]
    return body


def form_from_prescription(prescription: Any) -> dict[str, str]:
    """The form's values for a stored prescription (to edit it)."""
    values = {name: "" for name in FORM_FIELDS}
    values.update(drug=prescription.medication, notes=prescription.note or "", unit="mg")
    dosage = (prescription.dosage_instruction or [{}])[0]
    quantity = next((d.get("doseQuantity") for d in dosage.get("doseAndRate") or []
                     if d.get("doseQuantity")), None)
    if quantity:
        values["dose"] = f"{quantity.get('value', ''):g}"
        values["unit"] = quantity.get("code") or quantity.get("unit") or "mg"
    values["route"] = next((c.get("code", "") for c in
                            (dosage.get("route") or {}).get("coding", [])), "")
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    if repeat.get("period"):
        values["frequency"] = (f"{repeat.get('frequency', 1):g}/{repeat['period']:g}/"
                               f"{repeat.get('periodUnit', 'd')}")
    if bounds := repeat.get("boundsDuration"):
        values["duration"] = f"{bounds.get('value', ''):g}"
    return values
