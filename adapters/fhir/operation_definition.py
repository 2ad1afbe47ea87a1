"""OperationDefinitions of the custom operations, at the canonical URLs the
CapabilityStatement names (issue 16 item 5).

Which operations exist, on which type and at which level comes from the server's routes
(`capability.Operation`, read from the URL map by the API layer); what each one takes and
returns is the table `OPERATIONS` here. A route without an entry has no definition to serve,
and `tests/unit/api/test_conformance.py` fails for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fhir.resources.R4B.operationdefinition import OperationDefinition

from adapters.fhir.capability import Operation, operation_url
from adapters.fhir.common import instant

# When the parameter table last changed: the definitions' `date`.
DEFINITIONS_DATE = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Param:
    """One parameter of an operation: `use` in or out, `max` "1" or "*"."""

    name: str
    use: str
    min: int
    max: str
    type: str
    documentation: str
    target_profile: str | None = None


@dataclass(frozen=True)
class OperationSpec:
    """What an operation does and takes; `base` is the standard operation it constrains."""

    title: str
    description: str
    parameters: tuple[Param, ...]
    affects_state: bool = True
    base: str | None = None


def _returns(resource_type: str, text: str) -> Param:
    return Param("return", "out", 1, "1", resource_type, text)


def _reason(text: str) -> Param:
    return Param("reason", "in", 0, "1", "string", text)


_OTP = Param("otp", "in", 0, "1", "string",
             "A one-time code (e-mailed or TOTP) when the administrator's second factor is "
             "not fresh; without it and without a fresh factor the answer is 403")
_TASK = "The scan's Task after the step (businessStatus: the new state)"
PATIENT_PROFILE = "http://hl7.org/fhir/StructureDefinition/Patient"
BINARY_PROFILE = "http://hl7.org/fhir/StructureDefinition/Binary"

OPERATIONS: dict[str, OperationSpec] = {
    "upload": OperationSpec(
        "Upload a chest scan",
        "Store a JPEG, PNG or DICOM file as a new ImagingStudy waiting for the AI "
        "(Task businessStatus PENDING_AI). Send multipart/form-data with a 'file' part, or "
        "a Parameters resource; the file is refused with 413 past MAX_UPLOAD_MB (decoded), "
        "415 for another type, 400 for bad base64, 409 for a DICOM study already stored or "
        "of another patient.",
        (Param("file", "in", 1, "1", "Attachment",
               "The file: contentType image/jpeg, image/png or application/dicom and base64 "
               "data. Instead of valueAttachment a valueReference to a Binary the caller "
               "posted before (Binary/<id>) names a staged file, which the upload consumes"),
         Param("patient", "in", 0, "1", "Reference",
               "The Patient (valueReference Patient/<id>, or valueString <id>); required "
               "unless a patient uploads for themselves or the DICOM PatientID names one",
               PATIENT_PROFILE),
         Param("modality", "in", 0, "1", "string",
               "DICOM modality code (DX, CR, CT, MR, US, OT); a DICOM header's wins"),
         Param("bodySite", "in", 0, "1", "string", "Body part, at most 100 characters"),
         Param("description", "in", 0, "1", "string", "Study description, at most 500 "
               "characters"),
         _returns("ImagingStudy", "The new ImagingStudy (201, Location)"))),
    "classify": OperationSpec(
        "Run the AI classifier",
        "Classify the scan's image now (doctors; the upload queues it too). The scan must "
        "be in PENDING_AI.",
        (_returns("Observation", "The AI's Observation, with its confidence"),)),
    "verify": OperationSpec(
        "Verify the AI's finding",
        "A doctor agrees with the AI's finding or records their own (AI_ANALYZED to "
        "DOCTOR_VERIFIED).",
        (Param("note", "in", 1, "1", "string", "The doctor's note; required"),
         Param("agree", "in", 0, "1", "boolean", "Whether the doctor agrees with the AI"),
         Param("finding", "in", 0, "1", "string",
               "The doctor's finding; required when not agreeing, never 'Uncertain'"),
         Param("provisionalFinding", "in", 0, "1", "string",
               "The doctor's own reading before seeing the AI's (blind read)"),
         _returns("Observation", "The doctor's Observation"))),
    "pharmacy-review": OperationSpec(
        "Complete the pharmacy review",
        "A pharmacist completes the review of the scan's prescriptions (DOCTOR_VERIFIED to "
        "PHARMACIST_COMPLETED).",
        (Param("note", "in", 1, "1", "string", "The pharmacist's note; required"),
         Param("override-reason", "in", 0, "1", "string",
               "Why an interaction or allergy warning is overridden"),
         _returns("Task", _TASK))),
    "approve": OperationSpec(
        "Approve and release the report",
        "An administrator with a fresh second factor releases the PDF report "
        "(PHARMACIST_COMPLETED to REPORT_READY); the patient is e-mailed.",
        (_OTP, _returns("DiagnosticReport", "The released DiagnosticReport (201)"))),
    "return-to-patient": OperationSpec(
        "Ask the patient for a new scan",
        "A doctor finds an AI-analysed scan unreadable; the patient is asked to upload "
        "again (AI_ANALYZED to RETURNED).",
        (_reason("Why the scan is returned (shown to the patient)"), _returns("Task", _TASK))),
    "send-back": OperationSpec(
        "Send the scan back to the doctor",
        "A pharmacist or administrator sends a verified scan back to the doctor.",
        (_reason("Why the scan goes back"), _returns("Task", _TASK))),
    "prioritize": OperationSpec(
        "Set the scan's priority",
        "Triage: set the Task's priority.",
        (Param("priority", "in", 1, "1", "code", "routine or urgent"),
         _returns("Task", "The scan's Task with its new priority"))),
    "amend": OperationSpec(
        "Propose a correction of a released report",
        "A doctor proposes an amended finding; the report is unchanged until an "
        "administrator approves the amendment (202).",
        (Param("note", "in", 1, "1", "string", "What is corrected and why; required"),
         Param("finding", "in", 0, "1", "string", "The corrected finding"),
         _returns("OperationOutcome", "Says the amendment is pending"))),
    "approve-amendment": OperationSpec(
        "Release an amended report",
        "An administrator with a fresh second factor releases the pending amendment as the "
        "report's next version.",
        (_OTP, _returns("DiagnosticReport", "The amended DiagnosticReport"))),
    "status": OperationSpec(
        "A subscription's status",
        "The Subscriptions Backport IG's $status: the subscription's SubscriptionStatus "
        "(status, events since it started, the last event delivered).",
        (_returns("Bundle", "A subscription-notification Bundle of type history whose first "
                  "entry is the SubscriptionStatus Parameters"),),
        affects_state=False),
    "events": OperationSpec(
        "A subscription's past events",
        "The Subscriptions Backport IG's $events: the notifications of a range of events, "
        "to catch up after a gap.",
        (Param("eventsSinceNumber", "in", 0, "1", "string", "The first event number wanted"),
         Param("eventsUntilNumber", "in", 0, "1", "string", "The last event number wanted"),
         _returns("Bundle", "A subscription-notification Bundle with those events")),
        affects_state=False),
    "validate": OperationSpec(
        "Validate a resource for create",
        "Check a resource as a create would (mode create only): the body is the resource "
        "itself, not Parameters.",
        (Param("resource", "in", 1, "1", "Resource", "The resource to check (the body)"),
         _returns("OperationOutcome", "Valid, or each problem with its element")),
        affects_state=False,
        base="http://hl7.org/fhir/OperationDefinition/Resource-validate"),
}


def definition_id(operation: Operation) -> str:
    return f"{operation.resource_type}-{operation.name}"


def operation_definition(operation: Operation, *, base_url: str) -> OperationDefinition:
    """The OperationDefinition of `$name` on `resource_type`, at its canonical URL.

    Raises:
        KeyError: `OPERATIONS` has no entry for the operation.
    """
    spec = OPERATIONS[operation.name]
    parameters = []
    for param in spec.parameters:
        entry = {"name": param.name, "use": param.use, "min": param.min, "max": param.max,
                 "type": param.type, "documentation": param.documentation}
        if param.target_profile:
            entry["targetProfile"] = [param.target_profile]
        parameters.append(entry)
    machine_name = "".join(part[0].upper() + part[1:] for part in
                           definition_id(operation).replace("-", " ").split())
    resource = {
        "resourceType": "OperationDefinition",
        "id": definition_id(operation),
        "url": operation_url(base_url, operation),
        "version": "1",
        "name": machine_name,
        "title": spec.title,
        "status": "active",
        "kind": "operation",
        "date": instant(DEFINITIONS_DATE),
        "publisher": "CSSS-FHIR",
        "description": spec.description,
        "affectsState": spec.affects_state,
        "code": operation.name,
        "resource": [operation.resource_type],
        "system": False,
        "type": not operation.instance,
        "instance": operation.instance,
        "parameter": parameters,
    }
    if spec.base:
        resource["base"] = spec.base
    return OperationDefinition.model_validate(resource)
