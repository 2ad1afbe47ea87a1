"""Prescriptions <-> FHIR MedicationRequest."""

from __future__ import annotations

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
from csss_fhir.errors import ResourceValidationError


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
    status: str = "active"
    intent: str = "order"
    authored_on: datetime | None = None  # None: now
    # The resource as the client sent it (less id, meta, text), served back merged.
    resource_json: dict[str, Any] | None = None


# The statuses a new prescription may have; the rest describe what happens to it later.
CREATE_STATUSES = ("active", "draft")


def _quantity_text(quantity: Any) -> str | None:
    if quantity is None or quantity.value is None:
        return None
    unit = quantity.unit or quantity.code or ""
    return f"{quantity.value:g} {unit}".strip()


def _concept_text(concept: Any) -> str | None:
    if concept is None:
        return None
    if concept.text:
        return concept.text
    for coding in concept.coding or []:
        if coding.display or coding.code:
            return coding.display or coding.code
    return None


def from_fhir_medication_request(body: Any) -> PrescriptionData:
    """Validate a client's MedicationRequest and take what we store.

    Raises:
        ResourceValidationError: invalid FHIR, or missing subject / supportingInformation
            ImagingStudy / medication.
    """
    resource = parse_resource(body, "MedicationRequest")
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
            frequency = _concept_text(dosage.timing.code)
            if dosage.timing.repeat and dosage.timing.repeat.boundsDuration:
                duration = _quantity_text(dosage.timing.repeat.boundsDuration)
    if duration is None and resource.dispenseRequest and \
            resource.dispenseRequest.expectedSupplyDuration:
        duration = _quantity_text(resource.dispenseRequest.expectedSupplyDuration)
    note = "\n".join(n.text for n in resource.note or [] if n.text) or None
    codings = [c.model_dump(exclude_none=True) for c in (concept.coding or [])]
    if resource.status not in CREATE_STATUSES:
        raise ResourceValidationError(
            f"MedicationRequest.status is {resource.status!r}; a new prescription is "
            f"{' or '.join(CREATE_STATUSES)}", expression="MedicationRequest.status")
    authored = resource.authoredOn
    return PrescriptionData(
        patient_id=patient_id, scan_id=scan_id, medication=medication,
        medication_code={"coding": codings} if codings else None,
        dose=dose, route=route, frequency=frequency, duration=duration,
        dosage_text=dosage_text, note=note, status=resource.status, intent=resource.intent,
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


def to_fhir_medication_request(prescription: Any) -> MedicationRequest:
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
        "dosageInstruction": [dosage],
    }
    if prescription.note:
        data["note"] = [{"text": prescription.note}]
    submitted = getattr(prescription, "resource_json", None)
    if submitted and "authoredOn" in submitted:
        del data["authoredOn"]  # the client's, at its own precision (set once, never edited)
    return MedicationRequest.model_validate(merge_submitted(data, submitted))
