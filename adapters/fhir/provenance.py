"""Workflow events -> FHIR Provenance (who did what, when, to which resources).

Each result's Provenance names everyone behind it, as the HL7 AI Transparency IG asks: the
model's Device is the `author` of the AI Observation and of everything derived from it, the
doctor who verified the finding is the `verifier`, and the admin who released the report is
the `attester`. The resources a result was derived from are its `entity` (role `source`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.provenance import Provenance

from adapters.fhir.common import DATA_OPERATION, PROVENANCE_PARTICIPANT, instant, meta, reference

# The participant type of the person who took each step.
STEP_AGENT_TYPE = {
    "upload": "enterer",
    "classify": "performer",
    "verify": "verifier",
    "prescribe": "author",
    "change-prescription": "author",  # an edit or cancellation (workflow/prescriptions.py)
    "pharmacy-review": "performer",
    "approve": "attester",
    "amend": "author",  # a correction of a released report (workflow/amendments.py)
    "return-to-patient": "performer",  # workflow/returns.py
    "send-back": "performer",
    "prioritize": "performer",
    "approve-amendment": "attester",
}


@dataclass(frozen=True)
class ResultChain:
    """Who stands behind a result, from the scan's earlier steps (all optional)."""

    device_id: str | None = None  # the model that made the AI Observation
    verifier_reference: str | None = None  # "Practitioner/<doctor id>"
    sources: tuple[str, ...] = ()  # "Observation/<id>", "ImagingStudy/<id>"


def _agent_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": code}]}


def to_fhir_provenance(event: Any, chain: ResultChain | None = None, *,
                       target_versions: dict[str, int] | None = None) -> Provenance:
    """`target_versions` ({"Type/id": version}) makes each target version-specific
    (`Type/id/_history/n`), as Provenance.target should be: the version the step wrote."""
    chain = chain or ResultChain()
    versions = target_versions or {}
    agents: list[dict[str, Any]] = []
    if event.actor_reference:
        agents.append({"type": _agent_type(STEP_AGENT_TYPE[event.step]),
                       "who": {"reference": event.actor_reference}})
    elif event.actor_client:
        agents.append({"type": _agent_type(STEP_AGENT_TYPE[event.step]),
                       "who": {"display": f"system client {event.actor_client}"}})
    if chain.verifier_reference and event.step == "approve":
        agents.append({"type": _agent_type("verifier"),
                       "who": {"reference": chain.verifier_reference}})
    device_id = event.device_id or chain.device_id
    if device_id:
        agents.append({"type": _agent_type("author"), "who": reference("Device", device_id)})
    targets = [{"reference": f"{t}/_history/{versions[t]}" if t in versions else t}
               for t in event.targets]
    data: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": event.id,
        "meta": meta(event),
        "target": targets,
        "recorded": instant(event.created_at),
        "activity": {
            "coding": [{"system": DATA_OPERATION,
                        "code": "CREATE" if event.step == "upload" else "UPDATE"}],
            "text": f"{event.step}: {event.from_state or '-'} -> {event.to_state}",
        },
        "agent": agents,
    }
    if getattr(event, "reason", None):
        data["reason"] = [{"text": event.reason}]
    if chain.sources:
        data["entity"] = [{"role": "source", "what": {"reference": s}} for s in chain.sources]
    return Provenance.model_validate(data)
