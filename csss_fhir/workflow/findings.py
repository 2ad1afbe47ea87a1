"""What counts as a doctor's finding: the one statement of the rule for $verify and $amend.

A finding names what the scan shows, in at most 100 characters; "Uncertain" is the AI's
way of saying it does not know, never a finding. At verification a finding is required when
the AI said Uncertain or the doctor disagrees with it.
"""

from __future__ import annotations

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import AiPrediction
from csss_fhir.workflow.errors import FindingRequiredError
from ml.infer import UNCERTAIN

MAX_LENGTH = 100  # DoctorReview.finding and ReportAmendment.finding are String(100)


def clean_finding(finding: str | None, *, field: str = "finding") -> str | None:
    """The finding without surrounding blanks; None when none was given.

    Raises:
        FindingRequiredError: the finding is "Uncertain".
        InvalidInputError: the finding is longer than MAX_LENGTH characters.
    """
    finding = (finding or "").strip() or None
    if finding is None:
        return None
    if finding.lower() == UNCERTAIN.lower():
        raise FindingRequiredError("'Uncertain' is not a finding; name what the scan shows",
                                   field=field)
    if len(finding) > MAX_LENGTH:
        raise InvalidInputError(
            f"the finding is {len(finding)} characters long; it must be at most "
            f"{MAX_LENGTH}: name what the scan shows and put the rest in the note",
            field=field)
    return finding


def check_verification(prediction: AiPrediction, *, agree: bool, finding: str | None) -> None:
    """Check a doctor's verdict on the AI result; `finding` is already cleaned.

    Raises:
        FindingRequiredError: the AI said Uncertain, or the doctor disagrees, and no finding
            was given; or the AI said Not assessable and the doctor agrees or names none.
        InvalidInputError: `agree` is true but the finding differs from the AI's label.
    """
    if getattr(prediction, "assessable", True) is False and (agree or not finding):
        raise FindingRequiredError(
            "the AI could not assess this image (Not assessable: "
            f"{prediction.reason or 'no reason given'}); there is nothing to agree with: "
            "send agree=false with your 'finding', or return the scan for a new image")
    if prediction.uncertain and not finding:
        raise FindingRequiredError(
            "the AI result is Uncertain: an explicit 'finding' is required to verify",
            field="finding")
    if not agree and not finding:
        raise FindingRequiredError("you disagree with the AI: give your 'finding'",
                                   field="finding")
    if agree and finding and not prediction.uncertain and finding != prediction.label:
        raise InvalidInputError(
            f"'agree' is true but the finding {finding!r} differs from the AI's "
            f"{prediction.label!r}; set agree to false", field="agree")
