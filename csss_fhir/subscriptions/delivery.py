"""Deliver a subscription's handshake, notifications and heartbeats to its rest-hook.

One sender at a time per subscription: the job claims the row (a conditional UPDATE, as
the outbox does), then sends its waiting events one by one, in number order, each only
after the endpoint answered the previous one with a 2xx. A failure (no answer, a non-2xx)
leaves the event waiting and the subscription due again after a back-off (5 s, doubling,
at most an hour); the sweep finds it then, so a receiver that is down gets every event
later, in order, and none twice (unless its 2xx was lost on the way back: at-least-once,
numbered so a receiver can tell). Handshake: a `requested` subscription becomes `active`
after a 2xx, `error` otherwise. An endpoint the server may no longer post to
(`endpoints.check`: its DNS answer or the allow-list changed) ends the subscription in
`error` with the reason, which `$status` shows.

Every notification sent or failed leaves an AuditEvent (export, 110106) naming the
subscription, the event number and the outcome; the address it went to is the agent's
network address.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from adapters.fhir.subscription import Event, notification_bundle, status_parameters
from csss_fhir.models import Subscription, SubscriptionEvent, utcnow
from csss_fhir.security import audit
from csss_fhir.security.actor import Actor
from csss_fhir.settings import EndpointAllowlist
from csss_fhir.subscriptions import endpoints
from csss_fhir.subscriptions.service import ACTIVE, ERROR, REQUESTED, change_status
from csss_fhir.subscriptions.topics import canonical

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
CLAIM_SECONDS = 120  # longer than a batch of sends; a killed sender's claim lapses
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 3600
BATCH = 50  # events sent per claim before the claim is renewed
SUBTYPE = "subscription-notification"  # the AuditEvent subtype of each notification


class DeliveryFailed(Exception):
    """The endpoint did not acknowledge (no answer, or not 2xx): try again later."""


class DeliveryRefused(Exception):
    """The server must not post to the endpoint: the subscription ends in `error`."""


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1)))


def _claimable(now: datetime):
    return (or_(Subscription.claimed_until.is_(None), Subscription.claimed_until < now)
            & or_(Subscription.next_attempt_at.is_(None), Subscription.next_attempt_at <= now))


def _claim(session: Session, subscription_id: str) -> Subscription | None:
    now = utcnow()
    claimed = session.execute(
        update(Subscription).where(Subscription.id == subscription_id, _claimable(now))
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if claimed != 1:
        return None
    row = session.get(Subscription, subscription_id)
    session.refresh(row)
    return row


def notify(session: Session, fhir_base: str, subscription_id: str,
           allowlist: EndpointAllowlist) -> str:
    """The notify-subscriber job: send what is due for this subscription; return what
    happened ("skipped": not due or another sender holds it)."""
    outcome = "skipped"
    while (row := _claim(session, subscription_id)) is not None:
        outcome = _deliver(session, fhir_base, row, allowlist)
        session.refresh(row)
        # An event recorded while we held the claim found it taken: send it now.
        if outcome != "delivered" or row.delivered_through >= row.events_count:
            break
    return outcome


def _deliver(session: Session, fhir_base: str, row: Subscription,
             allowlist: EndpointAllowlist) -> str:
    try:
        if row.status == REQUESTED:
            _send(session, row, allowlist, _status_bundle(fhir_base, row, "handshake"),
                  "handshake")
            change_status(session, row, ACTIVE, fhir_base)
            row.last_sent_at = utcnow()
            return _done(session, row, "active")
        if row.status != ACTIVE:
            return _done(session, row, "inactive")
        waiting = list(session.scalars(
            select(SubscriptionEvent).where(SubscriptionEvent.subscription_id == row.id,
                                            SubscriptionEvent.number > row.delivered_through)
            .order_by(SubscriptionEvent.number).limit(BATCH)))
        for event in waiting:
            if event.number != row.delivered_through + 1:
                break  # a gap: the event's transaction has not committed yet
            _send(session, row, allowlist, _event_bundle(session, fhir_base, row, event),
                  "event-notification", event)
            row.delivered_through = event.number
            row.last_sent_at = utcnow()
            row.attempts = 0
            row.claimed_until = utcnow() + timedelta(seconds=CLAIM_SECONDS)
            session.commit()
        if not waiting and heartbeat_due(row, utcnow()):
            _send(session, row, allowlist, _status_bundle(fhir_base, row, "heartbeat"),
                  "heartbeat")
            row.last_sent_at = utcnow()
        return _done(session, row, "delivered")
    except DeliveryRefused as err:
        return _refused(session, fhir_base, row, str(err))
    except DeliveryFailed as err:
        return _failed(session, fhir_base, row, str(err))


def _done(session: Session, row: Subscription, outcome: str) -> str:
    row.claimed_until = None
    row.next_attempt_at = None
    row.attempts = 0
    if row.status == ACTIVE:  # an ended subscription keeps the reason it shows
        row.last_error = None
    session.commit()
    return outcome


def _failed(session: Session, fhir_base: str, row: Subscription, error: str) -> str:
    row.attempts += 1
    row.last_error = error[:500]
    row.claimed_until = None
    if row.status == REQUESTED:  # the handshake failed: the client must subscribe again
        change_status(session, row, ERROR, fhir_base, error)
        row.next_attempt_at = None
        outcome = "error"
    else:
        row.next_attempt_at = utcnow() + retry_delay(row.attempts)
        outcome = "retrying"
    session.commit()
    log.warning("subscription delivery failed",
                extra={"subscription_id": row.id, "attempt": row.attempts, "outcome": outcome})
    return outcome


def _refused(session: Session, fhir_base: str, row: Subscription, error: str) -> str:
    """The endpoint is one the server must not post to: nothing more is sent (the client
    subscribes again with an endpoint that is allowed)."""
    change_status(session, row, ERROR, fhir_base, error)
    row.claimed_until = None
    row.next_attempt_at = None
    session.commit()
    log.warning("subscription endpoint refused",
                extra={"subscription_id": row.id, "outcome": "error"})
    return "error"


def heartbeat_due(row: Subscription, now: datetime) -> bool:
    return bool(row.status == ACTIVE and row.heartbeat_seconds and (
        row.last_sent_at is None
        or row.last_sent_at + timedelta(seconds=row.heartbeat_seconds) <= now))


def _send(session: Session, row: Subscription, allowlist: EndpointAllowlist, bundle: object,
          kind: str, event: SubscriptionEvent | None = None) -> None:
    """POST one notification and audit it (the caller commits a success; `_failed` and
    `_refused` commit a failure).

    Raises:
        DeliveryRefused: the endpoint is not one the server may post to.
        DeliveryFailed: it did not resolve, answer, or answer 2xx.
    """
    headers = {"Content-Type": "application/fhir+json"}
    for header in row.resource_json.get("channel", {}).get("header", []):
        name, _, value = header.partition(":")
        if name.strip() and value.strip():
            headers[name.strip()] = value.strip()
    address = None
    try:
        target = endpoints.check(row.endpoint, allowlist)
        status, address = endpoints.post(target, bundle.model_dump_json().encode(), headers,
                                          TIMEOUT_SECONDS)
        if not 200 <= status < 300:
            raise DeliveryFailed(f"the endpoint answered {status}; expected 2xx")
    except endpoints.EndpointRefusedError as err:
        _audit(session, row, kind, event, audit.SERIOUS_FAILURE, f"refused: {err}", None)
        raise DeliveryRefused(f"delivery refused: {err}") from err
    except endpoints.EndpointUnreachableError as err:
        _audit(session, row, kind, event, audit.MINOR_FAILURE, f"failed: {err}", None)
        raise DeliveryFailed(str(err)) from err
    except DeliveryFailed as err:
        _audit(session, row, kind, event, audit.MINOR_FAILURE, f"failed: {err}", address)
        raise
    _audit(session, row, kind, event, audit.SUCCESS, "delivered", address)


def _audit(session: Session, row: Subscription, kind: str, event: SubscriptionEvent | None,
           outcome: str, result: str, address: str | None) -> None:
    """An export AuditEvent for one notification: the subscribing client as agent (at the
    address that answered, else the endpoint's host), the subscription and the event's
    focus as entities, the focus's patient as patient. The description holds codes and
    numbers only (the errors say nothing about patients)."""
    what = f"event {event.number}" if event is not None else kind
    entities = [f"Subscription/{row.id}"] + ([event.focus] if event is not None else [])
    patient_id = _focus_patient(session, event.focus) if event is not None else None
    audit.record(session, audit.Event(audit.EXPORT, "R", outcome,
                                       subtype_code=SUBTYPE,
                                       description=f"{kind} ({what}): {result}"),
                 actor=Actor(role="system", client_id=row.client_id),
                 entities_by_patient={patient_id: entities},
                 address=address or urlsplit(row.endpoint).hostname or "")


def _subscription_url(fhir_base: str, row: Subscription) -> str:
    return f"{fhir_base}/Subscription/{row.id}"


def _status_bundle(fhir_base: str, row: Subscription, kind: str) -> object:
    url = _subscription_url(fhir_base, row)
    status = status_parameters(subscription_url=url, topic=canonical(fhir_base, row.topic),
                               status=ACTIVE if kind == "handshake" else row.status,
                               kind=kind, events_since_start=row.events_count)
    return notification_bundle(status, subscription_url=url, at=utcnow())


def _event_bundle(session: Session, fhir_base: str, row: Subscription,
                  event: SubscriptionEvent) -> object:
    url = _subscription_url(fhir_base, row)
    resource = _focus_resource(session, event.focus) if row.content == "full-resource" else None
    item = Event(number=event.number, at=event.created_at, focus=f"{fhir_base}/{event.focus}",
                 resource=resource)
    status = status_parameters(subscription_url=url, topic=canonical(fhir_base, row.topic),
                               status=row.status, kind="event-notification",
                               events_since_start=event.number, events=[item])
    return notification_bundle(status, subscription_url=url, at=utcnow(), events=[item],
                               content=row.content)


def _focus_row(session: Session, focus: str) -> object | None:
    from csss_fhir import resources

    resource_type, _, resource_id = focus.partition("/")
    return session.get(resources.SERVED[resource_type].models[0], resource_id)


def _focus_resource(session: Session, focus: str) -> object | None:
    from csss_fhir import resources

    found = _focus_row(session, focus)
    return resources.SERVED[focus.partition("/")[0]].render(found) if found is not None \
        else None


def _focus_patient(session: Session, focus: str) -> str | None:
    return getattr(_focus_row(session, focus), "patient_id", None)


def due(session: Session, now: datetime) -> list[str]:
    """Subscriptions the sweep should hand to a notify job: a handshake or events waiting
    and due, or a heartbeat due; none held by a sender."""
    waiting = select(Subscription.id).where(
        _claimable(now),
        or_(Subscription.status == REQUESTED,
            (Subscription.status == ACTIVE)
            & (Subscription.delivered_through < Subscription.events_count)))
    ids = list(session.scalars(waiting.limit(200)))
    beats = session.scalars(select(Subscription).where(
        _claimable(now), Subscription.status == ACTIVE,
        Subscription.heartbeat_seconds.is_not(None)).limit(200))
    ids += [row.id for row in beats if heartbeat_due(row, now) and row.id not in ids]
    return ids
