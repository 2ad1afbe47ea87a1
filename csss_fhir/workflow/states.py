"""The scan workflow as data: steps, who may take them, and the states they move between.

This table is the one statement of the rules; the commands (`upload`, `steps`, `release`,
`amendments`, through `tasks`) enforce it for the FHIR API and the web UI alike.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from csss_fhir.security.access import Role


class ScanState(enum.StrEnum):
    """Where a scan is in the workflow: the Task's businessStatus, in workflow order."""

    PENDING_AI = "PENDING_AI"
    AI_ANALYZED = "AI_ANALYZED"
    DOCTOR_VERIFIED = "DOCTOR_VERIFIED"
    PHARMACIST_COMPLETED = "PHARMACIST_COMPLETED"
    REPORT_READY = "REPORT_READY"
    # The doctor returned the scan to the patient for a new image: the end of this scan.
    RETURNED = "RETURNED"


class Step(enum.StrEnum):
    UPLOAD = "upload"
    CLASSIFY = "classify"
    VERIFY = "verify"
    PRESCRIBE = "prescribe"
    CHANGE_PRESCRIPTION = "change-prescription"  # edit or cancel, before the review ends
    PHARMACY_REVIEW = "pharmacy-review"
    APPROVE = "approve"
    AMEND = "amend"
    RETURN_TO_PATIENT = "return-to-patient"
    SEND_BACK = "send-back"
    PRIORITIZE = "prioritize"
    APPROVE_AMENDMENT = "approve-amendment"


@dataclass(frozen=True)
class StepRule:
    roles: frozenset[str]
    from_state: ScanState | None  # None: the step creates the scan
    to_state: ScanState
    system_scope: str | None = None  # SMART scope a system client needs, None: not for clients
    also_from: frozenset[ScanState] = frozenset()  # further states the step may start from

    def starts_from(self, state: str) -> bool:
        return state == self.from_state or state in self.also_from


RULES: dict[Step, StepRule] = {
    Step.UPLOAD: StepRule(frozenset({Role.PATIENT, Role.ADMIN}), None, ScanState.PENDING_AI,
                          system_scope="system/ImagingStudy.write"),
    Step.CLASSIFY: StepRule(frozenset({Role.DOCTOR}), ScanState.PENDING_AI,
                            ScanState.AI_ANALYZED),
    Step.VERIFY: StepRule(frozenset({Role.DOCTOR}), ScanState.AI_ANALYZED,
                          ScanState.DOCTOR_VERIFIED),
    # Prescribing does not move the scan; it is allowed only while the pharmacist works on it.
    Step.PRESCRIBE: StepRule(frozenset({Role.PHARMACIST}), ScanState.DOCTOR_VERIFIED,
                             ScanState.DOCTOR_VERIFIED),
    Step.CHANGE_PRESCRIPTION: StepRule(frozenset({Role.PHARMACIST}), ScanState.DOCTOR_VERIFIED,
                                       ScanState.DOCTOR_VERIFIED),
    Step.PHARMACY_REVIEW: StepRule(frozenset({Role.PHARMACIST}), ScanState.DOCTOR_VERIFIED,
                                   ScanState.PHARMACIST_COMPLETED),
    Step.APPROVE: StepRule(frozenset({Role.ADMIN}), ScanState.PHARMACIST_COMPLETED,
                           ScanState.REPORT_READY),
    # A correction of a released report: any doctor proposes it, an admin approves it with
    # a fresh second factor; only then is it a new version with a new PDF. The state stays.
    Step.AMEND: StepRule(frozenset({Role.DOCTOR}), ScanState.REPORT_READY,
                         ScanState.REPORT_READY),
    # The image cannot be read: the patient is asked for a new one, this scan ends.
    Step.RETURN_TO_PATIENT: StepRule(frozenset({Role.DOCTOR}), ScanState.AI_ANALYZED,
                                     ScanState.RETURNED,
                                     also_from=frozenset({ScanState.PENDING_AI})),
    # The verification is in doubt: back to the doctor, the earlier one is superseded.
    Step.SEND_BACK: StepRule(frozenset({Role.PHARMACIST, Role.ADMIN}),
                             ScanState.DOCTOR_VERIFIED, ScanState.AI_ANALYZED,
                             also_from=frozenset({ScanState.PHARMACIST_COMPLETED})),
    # Marking a scan urgent or routine does not move it (no transition: to_state is unused).
    Step.PRIORITIZE: StepRule(frozenset({Role.DOCTOR}), ScanState.AI_ANALYZED,
                              ScanState.AI_ANALYZED,
                              also_from=frozenset({ScanState.PENDING_AI})),
    Step.APPROVE_AMENDMENT: StepRule(frozenset({Role.ADMIN}), ScanState.REPORT_READY,
                                     ScanState.REPORT_READY),
}

# What each step writes, as a SMART scope names it: (resource type, v2 permission). An app
# acting for a user takes a step only when its token holds that scope as well as the user's
# role allowing the step (security/scopes.py). $verify creates the doctor's Observation, so
# it needs Observation.c (.u changes none); the Task moves with every step and is not named.
WRITES: dict[Step, tuple[str, str]] = {
    Step.UPLOAD: ("ImagingStudy", "c"),
    Step.CLASSIFY: ("Observation", "c"),
    Step.VERIFY: ("Observation", "c"),
    Step.PRESCRIBE: ("MedicationRequest", "c"),
    Step.CHANGE_PRESCRIPTION: ("MedicationRequest", "u"),
    Step.PHARMACY_REVIEW: ("Task", "u"),
    Step.APPROVE: ("DiagnosticReport", "c"),
    Step.AMEND: ("DiagnosticReport", "u"),
    Step.RETURN_TO_PATIENT: ("Task", "u"),
    Step.SEND_BACK: ("Task", "u"),
    Step.PRIORITIZE: ("Task", "u"),
    Step.APPROVE_AMENDMENT: ("DiagnosticReport", "u"),
}


def writes_of(role: str) -> frozenset[tuple[str, str]]:
    """The (resource type, permission) pairs the steps of `role` write: what an app acting
    for a user of this role can ever be granted (never more than the role)."""
    return frozenset(WRITES[step] for step, rule in RULES.items() if role in rule.roles)


# Plain words for patients and staff, used by the UI and e-mails.
DESCRIPTIONS = {
    ScanState.PENDING_AI: "Received; waiting for the AI analysis",
    ScanState.AI_ANALYZED: "AI analysis done; waiting for a doctor's review",
    ScanState.DOCTOR_VERIFIED: "Reviewed by a doctor; waiting for the pharmacist",
    ScanState.PHARMACIST_COMPLETED: "Pharmacy review done; waiting for final approval",
    ScanState.REPORT_READY: "Report approved and released",
    ScanState.RETURNED: "Returned: a new image is needed",
}


def may_take(role: str, scopes: frozenset[str], step: Step) -> bool:
    """Whether an actor with this role (and, for system clients, scopes) may take `step`."""
    rule = RULES[step]
    if role == "system":
        return rule.system_scope is not None and (
            rule.system_scope in scopes or "system/*.write" in scopes
        )
    return role in rule.roles
