"""workflow: the scan state machine and its commands — the only place that decides who may
take which step in which state. The FHIR API and the web UI both call these functions.
"""

from csss_fhir.workflow.commands import (
    UploadRequest,
    approve,
    classify,
    pharmacy_review,
    prescribe,
    upload_scan,
    verify,
)
from csss_fhir.workflow.states import DESCRIPTIONS, RULES, Step

__all__ = ["DESCRIPTIONS", "RULES", "Step", "UploadRequest", "approve", "classify",
           "pharmacy_review", "prescribe", "upload_scan", "verify"]
