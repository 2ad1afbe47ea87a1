"""Internal codes in words for people: the one place a class name (`Bacterial_Pneumonia`),
a workflow state (`PENDING_AI`), a priority or an audit code becomes readable text.

The web templates use it as the `readable` Jinja filter and the PDF calls `readable`
directly, so no page or report shows a code. No Flask, no database.
"""

from __future__ import annotations

from collections.abc import Iterable

# Workflow states (workflow.states.ScanState), as a list or a badge shows them.
STATE_WORDS = {
    "PENDING_AI": "Waiting for AI",
    "AI_ANALYZED": "Waiting for the doctor",
    "DOCTOR_VERIFIED": "Waiting for the pharmacist",
    "PHARMACIST_COMPLETED": "Waiting for approval",
    "REPORT_READY": "Report released",
    "RETURNED": "Returned for a new image",
}

# Classifier classes and findings whose words are not just the code with spaces.
FINDING_WORDS = {
    "COVID": "COVID-19",
    "Not_Assessable": "Not assessable",
}

# Workflow steps (Provenance activities, history lines).
STEP_WORDS = {
    "upload": "Uploaded",
    "classify": "AI analysis",
    "verify": "Verified by the doctor",
    "prescribe": "Prescription added",
    "pharmacy-review": "Pharmacy review completed",
    "approve": "Approved and released",
    "amend": "Correction proposed",
    "return-to-patient": "Returned to the patient for a new image",
    "send-back": "Sent back to the doctor",
    "prioritize": "Priority changed",
    "change-prescription": "Prescription corrected or cancelled",
    "approve-amendment": "Correction approved and released",
}

# DICOM audit event types (DCM codes in security/audit.py) and AuditEvent actions.
AUDIT_WORDS = {
    "110110": "Patient record",
    "110112": "Query",
    "110106": "Export",
    "110114": "Sign-in",
    "110122": "Login",
    "110123": "Logout",
}
ACTION_WORDS = {"C": "Create", "R": "Read", "U": "Update", "D": "Delete", "E": "Execute"}

PRIORITY_WORDS = {"routine": "Routine", "urgent": "Urgent"}

# Routes of a medicine (SNOMED CT displays, as the pharmacist's form stores them), as a
# patient reads them in the report.
ROUTE_WORDS = {
    "Oral route": "By mouth",
    "Intravenous route": "Into a vein",
    "Intramuscular route": "Into a muscle",
    "Subcutaneous route": "Under the skin",
    "Respiratory tract route": "Inhaled",
    "Topical route": "On the skin",
}

_TABLES = (STATE_WORDS, FINDING_WORDS, STEP_WORDS, AUDIT_WORDS, ACTION_WORDS, PRIORITY_WORDS)


def readable(code: object) -> str:
    """`code` in words: a known state, step, audit code or priority by its table; any other
    code (a class name or a doctor's finding) with underscores as spaces and only its first
    letter raised, keeping acronyms (`Bacterial_Pneumonia` -> "Bacterial pneumonia",
    `COVID` -> "COVID-19"). None or "" is "–"."""
    if code is None or code == "":
        return "–"
    text = str(code)
    for table in _TABLES:
        if text in table:
            return table[text]
    words = text.replace("_", " ").split()
    if not words:
        return "–"
    # Lower-case the later words unless they are acronyms (all capitals, e.g. "ARDS").
    tail = [word if word.isupper() else word.lower() for word in words[1:]]
    return " ".join([words[0], *tail])


def route_words(route: str | None) -> str | None:
    """A medicine's route in a patient's words ("Oral route" -> "By mouth"); a route typed
    in words already (a FHIR client's text) comes back unchanged."""
    if route is None:
        return None
    return ROUTE_WORDS.get(route.strip(), route)


def code_for(words: str | None, codes: Iterable[str]) -> str | None:
    """The code among `codes` that `words` names, in its words or as the code itself, case
    aside ("bacterial pneumonia" -> `Bacterial_Pneumonia`): a form offers words, the record
    keeps the code. Any other text (a doctor's own finding) comes back unchanged."""
    if not words:
        return words
    wanted = words.strip().casefold()
    return next((code for code in codes
                 if wanted in (code.casefold(), readable(code).casefold())), words)
