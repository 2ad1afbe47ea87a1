"""Workflow events -> FHIR Provenance (who did what, when, to which resources)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.provenance import Provenance

from adapters.fhir.common import DATA_OPERATION, PROVENANCE_PARTICIPANT, instant, meta, reference

# The participant type of the person who took each step.
STEP_AGENT_TYPE = {
    "upload": "enterer",
    "classify": "performer",
    "verify": "verifier",
    "prescribe": "author",
    "pharmacy-review": "performer",
    "approve": "attester",
}


def _agent_type(code: str) -> dict[str, Any]:
    return {"coding": [{"system": PROVENANCE_PARTICIPANT, "code": code}]}


def to_fhir_provenance(event: Any) -> Provenance:
    agents: list[dict[str, Any]] = []
    if event.actor_reference:
        agents.append({"type": _agent_type(STEP_AGENT_TYPE[event.step]),
                       "who": {"reference": event.actor_reference}})
    elif event.actor_client:
        agents.append({"type": _agent_type(STEP_AGENT_TYPE[event.step]),
                       "who": {"display": f"system client {event.actor_client}"}})
    if event.device_id:
        agents.append({"type": _agent_type("author"), "who": reference("Device", event.device_id)})
    targets = [{"reference": t} for t in event.targets]
    return Provenance.model_validate({
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
    })
