"""`/fhir/Subscription`: create (system clients), read, vread, `_history`, `$status` and
`$events` (Subscriptions Backport IG, R4). The rules are in `csss_fhir.subscriptions`."""

from __future__ import annotations

import json
from datetime import datetime

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from flask import Blueprint, Response, request

from adapters.fhir.subscription import (
    Event,
    from_fhir_subscription,
    notification_bundle,
    status_parameters,
    to_fhir_subscription,
)
from csss_fhir import subscriptions
from csss_fhir.api.fhir import history_response
from csss_fhir.api.responses import (
    base_url,
    check_acceptable,
    conditional,
    fhir_response,
    json_body,
    raw_fhir_response,
)
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.extensions import services
from csss_fhir.models import Subscription, SubscriptionEvent, db, utcnow
from csss_fhir.search.query import whole_number
from csss_fhir.security.authentication import current_actor
from csss_fhir.subscriptions.service import events, values
from csss_fhir.subscriptions.topics import canonical

bp = Blueprint("fhir_subscriptions", __name__, url_prefix="/fhir/Subscription")


@bp.before_request
def negotiate() -> None:
    check_acceptable(request)


@bp.post("")
def create() -> Response:
    """201 with the Subscription (status `requested`); the handshake follows the commit."""
    actor = current_actor()
    subscriptions.require_subscriber(actor)
    row = subscriptions.create(db.session, actor, from_fhir_subscription(json_body(request)),
                               base_url(), services().settings.subscription_endpoint_allowlist)
    response = fhir_response(to_fhir_subscription(values(row, base_url())), 201)
    response.headers["Location"] = f"{base_url()}/Subscription/{row.id}"
    return response


@bp.get("/<subscription_id>")
def read(subscription_id: str) -> Response:
    row = subscriptions.find(db.session, current_actor(), subscription_id)
    return conditional(fhir_response(to_fhir_subscription(values(row, base_url()))))


@bp.get("/<subscription_id>/_history/<version_id>")
def vread(subscription_id: str, version_id: str) -> Response:
    row = subscriptions.find(db.session, current_actor(), subscription_id)
    body = subscriptions.version(db.session, row, int(version_id), base_url()) \
        if version_id.isdigit() else None
    if body is None:
        raise ResourceNotFoundError(f"Subscription/{subscription_id} has no version "
                                    f"{version_id!r}; its versions are 1 to {row.version_id}")
    last_updated = json.loads(body)["meta"]["lastUpdated"].replace("Z", "+00:00")
    return conditional(raw_fhir_response(body, version_id=int(version_id),
                                         last_modified=datetime.fromisoformat(last_updated)))


@bp.get("/<subscription_id>/_history")
def instance_history(subscription_id: str) -> Response:
    row = subscriptions.find(db.session, current_actor(), subscription_id)
    return history_response("Subscription", row.id,
                            subscriptions.versions(db.session, row, base_url()))


def _status(row: Subscription, kind: str, found: list[SubscriptionEvent] | None = None
            ) -> tuple[str, list[Event], Parameters]:
    url = f"{base_url()}/Subscription/{row.id}"
    items = [Event(number=e.number, at=e.created_at, focus=f"{base_url()}/{e.focus}")
             for e in found or ()]
    return url, items, status_parameters(
        subscription_url=url, topic=canonical(base_url(), row.topic), status=row.status,
        kind=kind, events_since_start=row.events_count, events=items,
        error=row.last_error)


@bp.route("/<subscription_id>/$status", methods=["GET", "POST"])
def status(subscription_id: str) -> Response:
    """A searchset Bundle holding the subscription's SubscriptionStatus (query-status)."""
    row = subscriptions.find(db.session, current_actor(), subscription_id)
    _, _, parameters = _status(row, "query-status")
    bundle = Bundle.model_validate({
        "resourceType": "Bundle", "type": "searchset", "total": 1,
        "entry": [{"fullUrl": f"urn:uuid:{parameters.id}", "search": {"mode": "match"},
                   "resource": json.loads(parameters.model_dump_json())}]})
    return fhir_response(bundle)


@bp.route("/<subscription_id>/$events", methods=["GET", "POST"])
def list_events(subscription_id: str) -> Response:
    """The events numbered eventsSinceNumber..eventsUntilNumber (default: all) as a
    notification Bundle of type query-event, with the focus of each (id-only)."""
    row = subscriptions.find(db.session, current_actor(), subscription_id)
    since, until = _number("eventsSinceNumber"), _number("eventsUntilNumber")
    if since is not None and until is not None and since > until:
        raise InvalidInputError(f"eventsSinceNumber ({since}) is after eventsUntilNumber "
                                f"({until}); give a range with since <= until",
                                field="eventsSinceNumber")
    url, items, parameters = _status(row, "query-event", events(db.session, row, since, until))
    return fhir_response(notification_bundle(parameters, subscription_url=url, at=utcnow(),
                                             events=items))


def _number(name: str) -> int | None:
    value = request.values.get(name)
    return None if value is None else whole_number(name, value, minimum=1, maximum=2**31 - 1)
