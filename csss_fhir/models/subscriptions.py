"""Topic-based subscriptions (the FHIR Subscriptions Backport IG): who is told what, where,
and the numbered events each subscription has to deliver, in order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from csss_fhir.models.base import UTCDateTime, db, new_id, utcnow


class Subscription(db.Model):
    """A system client's rest-hook subscription to one topic.

    `events_count` is the number of the last event recorded for it, `delivered_through` the
    number of the last one its endpoint acknowledged: the events in between wait, in order.

    `version_id`/`updated_at` are the served resource's meta.versionId/lastUpdated: they
    change with what the resource shows (its status and error), through
    `subscriptions.service.change_status`, not with the delivery bookkeeping below, which
    changes on every send. So this is no `Versioned` table (whose every UPDATE is a version).
    """

    __tablename__ = "subscription"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_client.id"), nullable=False,
                                           index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    version_id: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    topic: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    # requested (handshake not yet answered) | active | error | off
    status: Mapped[str] = mapped_column(String(20), nullable=False, default="requested")
    endpoint: Mapped[str] = mapped_column(String(2000), nullable=False)
    content: Mapped[str] = mapped_column(String(20), nullable=False)  # id-only | full-resource
    heartbeat_seconds: Mapped[int | None] = mapped_column(Integer)
    patient_id: Mapped[str | None] = mapped_column(String(36))  # the filter, if any
    resource_json: Mapped[dict] = mapped_column(JSON, nullable=False)  # as the client sent it
    events_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    delivered_through: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Delivery bookkeeping (subscriptions/delivery.py): failed attempts in a row, when the
    # next try is due, until when one sender holds the subscription, the last notification.
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))


class SubscriptionEvent(db.Model):
    """One event of a subscription: its number (1, 2, ...) and the resource it is about."""

    __tablename__ = "subscription_event"
    __table_args__ = (UniqueConstraint("subscription_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscription.id"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    focus: Mapped[str] = mapped_column(String(100), nullable=False)  # "DiagnosticReport/<id>"
