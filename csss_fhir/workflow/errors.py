"""Refusals of the scan workflow."""

from __future__ import annotations

from csss_fhir.errors import ConflictError, CsssError


class StepNotAllowedError(CsssError):
    """This actor's role may not take this step (or not on this patient's data)."""


class WrongStateError(ConflictError):
    """The scan is not in the state this step starts from, or another request won the race."""


class FindingRequiredError(CsssError):
    """Verification needs an explicit finding (AI said Uncertain, or the doctor disagrees)."""


class AgreementRequiredError(CsssError):
    """Verification needs the doctor's explicit choice: agree or disagree with the AI."""


class OverrideRequiredError(ConflictError):
    """The pharmacy review is completed past a formulary warning without an override reason."""


class PrescriptionClosedError(ConflictError):
    """A cancelled prescription, or one whose review is complete, cannot change any more."""


class AmendmentPendingError(ConflictError):
    """A report has a pending amendment already (propose), or none (approve)."""
