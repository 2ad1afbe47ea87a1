"""Create and find subscriptions; record an event for every subscription it concerns.

Who may subscribe: a system client (`role == "system"`) holding `system/Subscription.write`
(or `system/*.write`), to a topic whose focus type its scopes can read. A filter narrows
a subscription to one patient (`DiagnosticReport?patient=Patient/<id>`). A subscription
is visible to the client that made it only; to anyone else it does not exist.

Each change of what the served Subscription shows (its status, its error) is a new version
(`change_status`), kept as rendered in `resource_version` for vread and `_history`, as every
other served resource's versions are (csss_fhir/history.py).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from adapters.fhir.subscription import (
    SubscriptionRequest,
    SubscriptionValues,
    to_fhir_subscription,
)
from csss_fhir import jobs
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError, ResourceValidationError
from csss_fhir.models import ResourceVersion, Subscription, SubscriptionEvent, utcnow
from csss_fhir.security import access
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError
from csss_fhir.settings import EndpointAllowlist
from csss_fhir.subscriptions import endpoints
from csss_fhir.subscriptions.topics import TOPICS, canonical, topic_for

log = logging.getLogger(__name__)

ACTIVE, REQUESTED, ERROR = "active", "requested", "error"
RESOURCE_TYPE = "Subscription"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_LINE_BREAK = re.compile(r"[\r\n\x00]")


def require_subscriber(actor: Actor) -> None:
    """Raise AccessDeniedError unless the actor may subscribe at all (checked before the
    request body is read, so a caller without the right learns nothing from its errors)."""
    if actor.role != "system":
        raise AccessDeniedError(f"the {actor.role} role may not create Subscriptions; only "
                                "system clients (client_credentials) may subscribe")
    access.require_create(actor, "Subscription")


def create(session: Session, actor: Actor, request: SubscriptionRequest,
           fhir_base: str, allowlist: EndpointAllowlist) -> Subscription:
    """Store the subscription as `requested` and queue its handshake (after commit). Commits.

    Raises:
        AccessDeniedError: not a system client, no Subscription.write scope, or no read
        scope for the topic's resources. InvalidInputError: unknown topic or filter.
        EndpointRefusedError: an endpoint the server must not post to (`endpoints.check`,
        run again before every notification); ResourceValidationError: one that does not
        resolve, or a header that cannot be sent.
    """
    require_subscriber(actor)
    topic = topic_for(fhir_base, request.topic)
    try:
        access.require_read(actor, topic.resource_type)
    except AccessDeniedError as err:
        raise AccessDeniedError(
            f"the topic {topic.code} tells about {topic.resource_type} resources, which "
            f"this client's scopes do not let it read; ask for system/"
            f"{topic.resource_type}.read") from err
    patient_id = _patient_filter(topic.resource_type, request.filters)
    _check_headers(request.headers)
    try:
        endpoints.check(request.endpoint, allowlist)
    except endpoints.EndpointUnreachableError as err:
        raise ResourceValidationError(f"{err}; give an endpoint whose host resolves",
                                      expression=endpoints.FIELD) from err
    row = Subscription(client_id=actor.client_id, topic=topic.code, status=REQUESTED,
                       endpoint=request.endpoint, content=request.content,
                       heartbeat_seconds=request.heartbeat_seconds, patient_id=patient_id,
                       resource_json=request.resource, next_attempt_at=utcnow())
    session.add(row)
    session.flush()
    _keep_version(session, row, fhir_base)
    jobs.enqueue(session, jobs.NOTIFY_SUBSCRIBER, row.id)
    session.commit()
    log.info("subscription created", extra={"subscription_id": row.id, "topic": topic.code})
    return row


def _check_headers(headers: tuple[str, ...]) -> None:
    """Refuse a channel.header line that is not `Name: value` on one line."""
    for header in headers:
        name, colon, value = header.partition(":")
        if not (colon and _HEADER_NAME.fullmatch(name.strip()) and value.strip()
                and not _LINE_BREAK.search(value)):
            raise ResourceValidationError(
                "a channel.header line is not 'Name: value' on one line (a token name, a "
                "non-empty value, no line breaks); fix or remove it",
                expression="Subscription.channel.header")


def _patient_filter(resource_type: str, filters: tuple[str, ...]) -> str | None:
    """The patient id the filters name, or None; only `<type>?patient=` is understood."""
    patient_id = None
    for text in filters:
        kind, _, query = text.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        if kind != resource_type or [name for name, _ in params] != ["patient"]:
            raise InvalidInputError(
                f"filter criteria {text!r} is not understood; this topic takes "
                f"{resource_type}?patient=Patient/<id>", field="Subscription.criteria")
        value = params[0][1].removeprefix("Patient/")
        if not value or "/" in value or (patient_id is not None and value != patient_id):
            raise InvalidInputError(f"filter criteria {text!r} names no single patient; "
                                    f"give {resource_type}?patient=Patient/<id> once",
                                    field="Subscription.criteria")
        patient_id = value
    return patient_id


def find(session: Session, actor: Actor, subscription_id: str) -> Subscription:
    """The caller's own subscription.

    Raises:
        ResourceNotFoundError: no such subscription, or another client's.
    """
    row = session.get(Subscription, subscription_id)
    if row is None or actor.role != "system" or row.client_id != actor.client_id:
        raise ResourceNotFoundError(f"Subscription/{subscription_id} does not exist")
    return row


def events(session: Session, row: Subscription, since: int | None = None,
           until: int | None = None) -> list[SubscriptionEvent]:
    """The subscription's events numbered `since`..`until` (inclusive), in order."""
    query = select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == row.id)
    if since is not None:
        query = query.where(SubscriptionEvent.number >= since)
    if until is not None:
        query = query.where(SubscriptionEvent.number <= until)
    return list(session.scalars(query.order_by(SubscriptionEvent.number)))


def values(row: Subscription, fhir_base: str) -> SubscriptionValues:
    filters = (f"{TOPICS[row.topic].resource_type}?patient=Patient/{row.patient_id}",) \
        if row.patient_id else ()
    return SubscriptionValues(
        id=row.id, status=row.status, topic=canonical(fhir_base, row.topic),
        endpoint=row.endpoint, content=row.content, heartbeat_seconds=row.heartbeat_seconds,
        filters=filters, reason=str(row.resource_json.get("reason") or TOPICS[row.topic].code),
        error=row.last_error if row.status == ERROR else None,
        version_id=row.version_id, last_updated=row.updated_at)


def change_status(session: Session, row: Subscription, status: str, fhir_base: str,
                  error: str | None = None) -> None:
    """Give the subscription `status` (and `error`, the reason an `error` status shows) as
    a new version, kept for vread and `_history`; no new version when what the resource
    shows stays the same. The caller commits."""
    error = error[:500] if error is not None else None
    unchanged = _shown(row.status, row.last_error) == _shown(status, error)
    if not unchanged and _stored(session, row.id, row.version_id) is None:
        _keep_version(session, row, fhir_base)  # made before versions were kept
    row.status, row.last_error = status, error
    if not unchanged:
        row.version_id += 1
        row.updated_at = utcnow()
        _keep_version(session, row, fhir_base)


def _shown(status: str, error: str | None) -> tuple[str, str | None]:
    """What the served resource shows of a status and error (values: the error only with
    an `error` status)."""
    return status, error if status == ERROR else None


def _keep_version(session: Session, row: Subscription, fhir_base: str) -> None:
    body = to_fhir_subscription(values(row, fhir_base)).model_dump_json().encode()
    session.add(ResourceVersion(resource_type=RESOURCE_TYPE, resource_id=row.id,
                                version_id=row.version_id, body=body))


def _stored(session: Session, subscription_id: str, version_id: int) -> bytes | None:
    return session.scalar(select(ResourceVersion.body).where(
        ResourceVersion.resource_type == RESOURCE_TYPE,
        ResourceVersion.resource_id == subscription_id,
        ResourceVersion.version_id == version_id))


def version(session: Session, row: Subscription, version_id: int, fhir_base: str
            ) -> bytes | None:
    """The subscription as served at `version_id` (None: no such version)."""
    if version_id == row.version_id:
        return current(session, row, fhir_base)
    return _stored(session, row.id, version_id)


def current(session: Session, row: Subscription, fhir_base: str) -> bytes:
    """The current version as kept, or rendered (one made before versions were kept)."""
    return _stored(session, row.id, row.version_id) or \
        to_fhir_subscription(values(row, fhir_base)).model_dump_json().encode()


def versions(session: Session, row: Subscription, fhir_base: str) -> list[ResourceVersion]:
    """Every version of the subscription as served, newest first (history.versions)."""
    kept = {v.version_id: v for v in session.scalars(select(ResourceVersion).where(
        ResourceVersion.resource_type == RESOURCE_TYPE, ResourceVersion.resource_id == row.id))}
    if row.version_id not in kept:  # made before versions were kept
        kept[row.version_id] = ResourceVersion(resource_type=RESOURCE_TYPE, resource_id=row.id,
                                               version_id=row.version_id,
                                               body=current(session, row, fhir_base))
    return [kept[number] for number in sorted(kept, reverse=True)]


def record(session: Session, topic: str, focus: str, patient_id: str | None) -> int:
    """Add an event about `focus` ("DiagnosticReport/<id>") to every active subscription
    to `topic` whose filter matches, in the caller's transaction; each is delivered after
    it commits. Returns how many subscriptions got one.

    The subscription row is locked while its next number is taken, so two events never
    share a number.
    """
    rows = session.scalars(
        select(Subscription).where(
            Subscription.topic == topic, Subscription.status == ACTIVE,
            or_(Subscription.patient_id.is_(None), Subscription.patient_id == patient_id))
        .order_by(Subscription.id).with_for_update()).all()
    for row in rows:
        row.events_count += 1
        session.add(SubscriptionEvent(subscription_id=row.id, number=row.events_count,
                                      focus=focus))
        jobs.enqueue(session, jobs.NOTIFY_SUBSCRIBER, row.id)
    return len(rows)
