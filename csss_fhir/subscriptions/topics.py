"""The topics a client may subscribe to. R4 has no SubscriptionTopic resource: a topic is
a canonical URL under the FHIR base (`<base>/SubscriptionTopic/<code>`), which a
Subscription names in `criteria` and the CapabilityStatement lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from csss_fhir.errors import InvalidInputError


@dataclass(frozen=True)
class Topic:
    code: str
    resource_type: str  # the type of each event's focus; a subscriber must be able to read it
    description: str


REPORT_RELEASED = "report-released"
SCAN_NEEDS_REVIEW = "scan-needs-review"
TOPICS = {t.code: t for t in (
    Topic(REPORT_RELEASED, "DiagnosticReport",
          "a DiagnosticReport became final ($approve) or amended/corrected "
          "($approve-amendment)"),
    Topic(SCAN_NEEDS_REVIEW, "Task",
          "a scan's Task reached AI_ANALYZED: the AI proposal waits for a doctor"),
)}


def canonical(fhir_base: str, code: str) -> str:
    return f"{fhir_base}/SubscriptionTopic/{code}"


def canonicals(fhir_base: str) -> tuple[str, ...]:
    return tuple(canonical(fhir_base, code) for code in TOPICS)


def topic_for(fhir_base: str, url: str) -> Topic:
    """The topic a Subscription's `criteria` names.

    Raises:
        InvalidInputError: no topic of this server has that URL.
    """
    for code, topic in TOPICS.items():
        if url == canonical(fhir_base, code):
            return topic
    raise InvalidInputError(f"criteria {url!r} names no topic of this server; subscribe to "
                            f"one of {', '.join(canonicals(fhir_base))}",
                            field="Subscription.criteria")
