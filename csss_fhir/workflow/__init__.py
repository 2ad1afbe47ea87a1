"""workflow: the scan state machine and its commands — the only place that decides who may
take which step in which state. The FHIR API and the web UI both call these functions.

`states` is the table of rules; `upload`, `classification`, `steps`, `release`,
`amendments`, `prescriptions` and `returns` (return to the patient, send back to the doctor,
priority) are the commands, by subject; `tasks` holds what every command does around its
change (lock the Task, If-Match, provenance, one winner of a race); `findings` the rule on a
doctor's finding.
"""

from csss_fhir.workflow.amendments import amend, approve_amendment
from csss_fhir.workflow.classification import classify
from csss_fhir.workflow.prescriptions import cancel as cancel_prescription
from csss_fhir.workflow.prescriptions import prescribe
from csss_fhir.workflow.prescriptions import update as update_prescription
from csss_fhir.workflow.release import approve
from csss_fhir.workflow.returns import prioritize, return_to_patient, send_back
from csss_fhir.workflow.states import DESCRIPTIONS, RULES, Step
from csss_fhir.workflow.steps import pharmacy_review, verify
from csss_fhir.workflow.upload import UploadRequest, upload_scan

__all__ = ["DESCRIPTIONS", "RULES", "Step", "UploadRequest", "amend", "approve", "classify",
           "pharmacy_review", "prescribe", "prioritize", "return_to_patient", "send_back",
           "upload_scan", "verify", "cancel_prescription", "update_prescription",
           "approve_amendment"]
