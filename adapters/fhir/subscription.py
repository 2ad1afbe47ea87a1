"""Subscription (R4, Subscriptions Backport IG profile) and its notifications, to and from
plain values.

R4 has no SubscriptionTopic: `Subscription.criteria` holds the topic's canonical URL, the
filter is the `backport-filter-criteria` extension on `criteria`, the payload content the
`backport-payload-content` extension on `channel.payload`, the heartbeat the
`backport-heartbeat-period` extension on `channel`. A notification is a Bundle of type
`history` whose first entry is a Parameters `SubscriptionStatus`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.subscription import Subscription
from pydantic import ValidationError

from adapters.fhir.common import instant
from csss_fhir.errors import ResourceValidationError

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
SUBSCRIPTION_PROFILE = f"{BACKPORT}/backport-subscription"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
CONTENTS = ("id-only", "full-resource")
FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a client asks for, read from its Subscription resource."""

    topic: str
    endpoint: str
    content: str
    heartbeat_seconds: int | None
    filters: tuple[str, ...]  # e.g. "DiagnosticReport?patient=Patient/123"
    headers: tuple[str, ...]  # channel.header: "Name: value", sent with each notification
    resource: dict


@dataclass(frozen=True)
class SubscriptionValues:
    """A stored subscription, as the API serves it."""

    id: str
    status: str
    topic: str
    endpoint: str
    content: str
    heartbeat_seconds: int | None
    filters: tuple[str, ...]
    reason: str
    error: str | None
    version_id: int
    last_updated: datetime


@dataclass(frozen=True)
class Event:
    number: int
    at: datetime
    focus: str  # absolute URL of the resource the event is about
    resource: Any | None = None  # the resource itself, for full-resource payloads


def _extension(element: dict | None, url: str) -> Any:
    for extension in (element or {}).get("extension", []):
        if extension.get("url") == url:
            return next((v for k, v in extension.items() if k.startswith("value")), None)
    return None


def from_fhir_subscription(body: Any) -> SubscriptionRequest:
    """Read a create request. Only rest-hook channels with FHIR JSON payloads are served.

    Raises:
        ResourceValidationError: not a valid R4 Subscription, or one this server cannot
        honour (the message says which element and what it takes).
    """
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        found = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
        raise ResourceValidationError(f"expected a Subscription resource, found {found!r}",
                                      expression="Subscription")
    try:
        Subscription.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("_"))
        raise ResourceValidationError(f"not a valid R4 Subscription: {first['msg']} at "
                                      f"{where or 'Subscription'}",
                                      expression=f"Subscription.{where}".rstrip(".")) from err
    channel = body["channel"]
    if channel.get("type") != "rest-hook":
        raise ResourceValidationError(
            f"channel.type is {channel.get('type')!r}; this server delivers rest-hook only",
            expression="Subscription.channel.type")
    endpoint = channel.get("endpoint") or ""
    if not endpoint.startswith(("http://", "https://")):
        raise ResourceValidationError(
            f"channel.endpoint is {endpoint!r}; a rest-hook needs an http(s) URL",
            expression="Subscription.channel.endpoint")
    if channel.get("payload", FHIR_JSON) != FHIR_JSON:
        raise ResourceValidationError(
            f"channel.payload is {channel.get('payload')!r}; only {FHIR_JSON} is sent",
            expression="Subscription.channel.payload")
    content = _extension(channel.get("_payload"), PAYLOAD_CONTENT) or "id-only"
    if content not in CONTENTS:
        raise ResourceValidationError(
            f"the payload content is {content!r}; use {' or '.join(CONTENTS)} "
            "(an empty notification tells nothing here)",
            expression="Subscription.channel.payload.extension")
    heartbeat = _extension(channel, HEARTBEAT_PERIOD)
    if heartbeat is not None and (not isinstance(heartbeat, int) or heartbeat < 1):
        raise ResourceValidationError(
            f"the heartbeat period is {heartbeat!r}; give whole seconds, at least 1",
            expression="Subscription.channel.extension")
    filters = tuple(e["valueString"] for e in body.get("_criteria", {}).get("extension", [])
                    if e.get("url") == FILTER_CRITERIA and e.get("valueString"))
    return SubscriptionRequest(topic=body["criteria"], endpoint=endpoint, content=content,
                               heartbeat_seconds=heartbeat, filters=filters,
                               headers=tuple(channel.get("header", [])), resource=body)


def to_fhir_subscription(values: SubscriptionValues) -> Subscription:
    channel: dict[str, Any] = {
        "type": "rest-hook", "endpoint": values.endpoint, "payload": FHIR_JSON,
        "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": values.content}]},
    }
    if values.heartbeat_seconds:
        channel["extension"] = [{"url": HEARTBEAT_PERIOD,
                                 "valueUnsignedInt": values.heartbeat_seconds}]
    resource: dict[str, Any] = {
        "resourceType": "Subscription", "id": values.id,
        "meta": {"versionId": str(values.version_id), "profile": [SUBSCRIPTION_PROFILE],
                 "lastUpdated": instant(values.last_updated)},
        "status": values.status, "reason": values.reason, "criteria": values.topic,
        "channel": channel,
    }
    if values.filters:
        resource["_criteria"] = {"extension": [{"url": FILTER_CRITERIA, "valueString": f}
                                               for f in values.filters]}
    if values.error:
        resource["error"] = values.error
    return Subscription.model_validate(resource)


def status_parameters(*, subscription_url: str, topic: str, status: str, kind: str,
                      events_since_start: int, events: Sequence[Event] = (),
                      error: str | None = None) -> Parameters:
    """A `SubscriptionStatus` (backport R4 Parameters profile).

    `kind`: handshake | heartbeat | event-notification | query-status | query-event.
    """
    parameters: list[dict[str, Any]] = [
        {"name": "subscription", "valueReference": {"reference": subscription_url}},
        {"name": "topic", "valueCanonical": topic},
        {"name": "status", "valueCode": status},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    for event in events:
        parameters.append({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": instant(event.at)},
            {"name": "focus", "valueReference": {"reference": event.focus}},
        ]})
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return Parameters.model_validate({"resourceType": "Parameters", "id": str(uuid.uuid4()),
                                      "meta": {"profile": [STATUS_PROFILE]},
                                      "parameter": parameters})


def notification_bundle(status: Parameters, *, subscription_url: str, at: datetime,
                        events: Sequence[Event] = (), content: str = "id-only") -> Bundle:
    """A `subscription-notification` Bundle (type history): the status first, then one
    entry per event's focus — its URL only (id-only) or the resource (full-resource)."""
    entries: list[dict[str, Any]] = [{
        "fullUrl": f"urn:uuid:{status.id}",
        "resource": json.loads(status.model_dump_json()),
        "request": {"method": "GET", "url": f"{subscription_url}/$status"},
        "response": {"status": "200"},
    }]
    for event in events:
        entry: dict[str, Any] = {"fullUrl": event.focus,
                                 "request": {"method": "PUT", "url": event.focus},
                                 "response": {"status": "200"}}
        if content == "full-resource" and event.resource is not None:
            entry["resource"] = json.loads(event.resource.model_dump_json())
        entries.append(entry)
    return Bundle.model_validate({"resourceType": "Bundle", "id": str(uuid.uuid4()),
                                  "meta": {"profile": [f"{BACKPORT}/backport-subscription-"
                                                       "notification-r4"]},
                                  "type": "history", "timestamp": instant(at),
                                  "entry": entries})
