"""workflow: the scan state machine and its commands — the only place that decides who may
take which step in which state. The FHIR API and the web UI both call these functions.

`states` is the table of rules; `upload`, `classification`, `steps`, `release` and
`amendments` are the commands, by subject; `tasks` holds what every command does around
its change (lock the Task, If-Match, provenance, one winner of a race); `findings` the rule
on a doctor's finding.
"""

from csss_fhir.workflow.amendments import amend
from csss_fhir.workflow.classification import classify
from csss_fhir.workflow.release import approve
from csss_fhir.workflow.states import DESCRIPTIONS, RULES, Step
from csss_fhir.workflow.steps import pharmacy_review, prescribe, verify
from csss_fhir.workflow.upload import UploadRequest, upload_scan

__all__ = ["DESCRIPTIONS", "RULES", "Step", "UploadRequest", "amend", "approve", "classify",
           "pharmacy_review", "prescribe", "upload_scan", "verify"]
