"""AI predictions and doctor reviews -> FHIR Observation."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.observation import Observation

from adapters.fhir.common import (
    AI_ASSERTED,
    CLINICIAN_ASSERTED_FROM_AI,
    DCM,
    FINDING_CODE_CODING,
    OBSERVATION_CATEGORY,
    UCUM,
    finding_concept,
    instant,
    meta,
    reference,
)

IMAGING_CATEGORY = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging",
                                 "display": "Imaging"}]}]
FINDING_CODE = {"coding": [FINDING_CODE_CODING], "text": "Chest X-ray finding"}
# One component per class: its code says what is measured, DCM 111012 "Certainty of
# Finding" (as IHE AI Results does), valued as a UCUM "1" quantity in [0, 1]; the class whose
# certainty it is rides in the component's FINDING_EXTENSION (a CodeableConcept, SNOMED CT
# where a concept exists). The class is not a second coding of the code: the two are not
# synonyms (issue 16 item 10).
CERTAINTY_CODE = {"system": DCM, "code": "111012", "display": "Certainty of Finding"}
FINDING_EXTENSION = "urn:csss-fhir:extension:certainty-finding"
# How the value was reached, in words; the model itself is Observation.device (its Device).
AI_METHOD = {"text": "AI classification of the chest radiograph (MobileNetV2 image "
                     "classifier; arg-max class, 'Uncertain' below the decision threshold)"}


# The proposal for an image the classifier cannot judge: a code of our own, never a disease
# class (there is no standard code for "the AI could not assess this image").
NOT_ASSESSABLE_SYSTEM = "urn:csss-fhir:codesystem:ai-assessability"
NOT_ASSESSABLE_CONCEPT = {"coding": [{"system": NOT_ASSESSABLE_SYSTEM, "code": "not-assessable",
                                      "display": "Not assessable"}],
                          "text": "Not assessable"}
REASON_CODE = {"coding": [{"system": NOT_ASSESSABLE_SYSTEM, "code": "reason",
                           "display": "Why the image is not assessable"}]}


def to_fhir_ai_observation(prediction: Any) -> Observation:
    """The classifier's proposal: preliminary, made by the model's Device.

    An image the classifier could not judge is valued "Not assessable" with its reason (a
    component and the note), and carries no class probabilities. A proposal a re-run
    replaced stays `preliminary` (it was not wrong, only older) and says which replaced it.
    """
    if getattr(prediction, "assessable", True) is False:
        return _not_assessable_observation(prediction)
    components = [
        {
            "extension": [{"url": FINDING_EXTENSION,
                           "valueCodeableConcept": finding_concept(name)}],
            "code": {"coding": [CERTAINTY_CODE],
                     "text": f"Probability of {name.replace('_', ' ')}"},
            "valueQuantity": {"value": round(float(p), 6), "unit": "probability",
                              "system": UCUM, "code": "1"},
        }
        for name, p in prediction.probabilities.items()
    ]
    note = (f"AI proposal. Decision threshold {prediction.threshold:.2f}: "
            f"top class {prediction.top_class} at {prediction.confidence:.3f}.")
    if prediction.uncertain:
        note += " Below the threshold: Uncertain, an explicit finding is required."
    return Observation.model_validate(_ai_observation(
        prediction, finding_concept(prediction.label), components, note))


def _not_assessable_observation(prediction: Any) -> Observation:
    reason = prediction.reason or "the classifier cannot judge this image"
    components = [{"code": REASON_CODE, "valueString": reason}]
    note = (f"AI proposal: Not assessable ({reason}). No disease class is proposed; the "
            "doctor names the finding or asks for a new image.")
    return Observation.model_validate(_ai_observation(
        prediction, NOT_ASSESSABLE_CONCEPT, components, note))


def _ai_observation(prediction: Any, value: dict[str, Any], components: list[dict[str, Any]],
                    note: str) -> dict[str, Any]:
    superseded_by = getattr(prediction, "superseded_by_id", None)
    if superseded_by:
        note += f" Superseded by a re-run of the AI: Observation/{superseded_by}."
    data: dict[str, Any] = {
        "resourceType": "Observation",
        "id": prediction.id,
        "meta": meta(prediction, security=[AI_ASSERTED]),
        "status": prediction.status,
        "category": IMAGING_CATEGORY,
        "code": FINDING_CODE,
        "subject": reference("Patient", prediction.patient_id),
        "effectiveDateTime": instant(prediction.created_at),
        "issued": instant(prediction.created_at),
        "valueCodeableConcept": value,
        "method": AI_METHOD,
        "derivedFrom": [reference("ImagingStudy", prediction.scan_id)],
        "component": components,
        "note": [{"text": note}],
    }
    if prediction.device_id:
        data["device"] = reference("Device", prediction.device_id)
    return data


def to_fhir_doctor_observation(review: Any) -> Observation:
    """The doctor's verified finding: final, derived from the AI Observation.

    A verification superseded by a send-back is `cancelled` (R4 has no "superseded"), its
    note saying why; a blind read's provisional finding, made before the AI proposal was
    shown, is a second component.
    """
    components: list[dict[str, Any]] = [{
        "code": {"text": "Agrees with the AI proposal"},
        "valueBoolean": review.agree,
    }]
    if review.provisional_finding:
        components.append({
            "code": {"text": "Provisional finding, before the AI proposal was shown"},
            "valueCodeableConcept": finding_concept(review.provisional_finding),
        })
    notes = [{"text": review.note}]
    if review.superseded_reason:
        notes.append({"text": f"Superseded. {review.superseded_reason}"})
    return Observation.model_validate({
        "resourceType": "Observation",
        "id": review.id,
        "meta": meta(review, security=[CLINICIAN_ASSERTED_FROM_AI]),
        "status": review.status,
        "category": IMAGING_CATEGORY,
        "code": FINDING_CODE,
        "subject": reference("Patient", review.patient_id),
        "effectiveDateTime": instant(review.created_at),
        "issued": instant(review.created_at),
        "performer": [reference("Practitioner", review.doctor_id)],
        "valueCodeableConcept": finding_concept(review.finding),
        "derivedFrom": [reference("Observation", review.prediction_id),
                        reference("ImagingStudy", review.scan_id)],
        "component": components,
        "note": notes,
    })
