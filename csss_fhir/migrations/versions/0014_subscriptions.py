"""subscriptions: topic-based rest-hook subscriptions and their numbered events

Revision ID: 0014_subscriptions
Revises: 0013_staged_binary

Issue 17 item 4 (the FHIR Subscriptions Backport IG): `subscription` holds a system
client's subscription and its delivery bookkeeping, `subscription_event` every event to
deliver, numbered per subscription.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from csss_fhir.models.base import UTCDateTime

revision = "0014_subscriptions"
down_revision = "0013_staged_binary"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("endpoint", sa.String(2000), nullable=False),
        sa.Column("content", sa.String(20), nullable=False),
        sa.Column("heartbeat_seconds", sa.Integer(), nullable=True),
        sa.Column("patient_id", sa.String(36), nullable=True),
        sa.Column("resource_json", sa.JSON(), nullable=False),
        sa.Column("events_count", sa.Integer(), nullable=False),
        sa.Column("delivered_through", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"],
                                name=op.f("fk_subscription_client_id_api_client")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription")),
    )
    op.create_index(op.f("ix_subscription_client_id"), "subscription", ["client_id"])
    op.create_index(op.f("ix_subscription_topic"), "subscription", ["topic"])
    op.create_index(op.f("ix_subscription_next_attempt_at"), "subscription",
                    ["next_attempt_at"])
    op.create_table(
        "subscription_event",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("focus", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"],
                                name=op.f("fk_subscription_event_subscription_id_subscription")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_event")),
        sa.UniqueConstraint("subscription_id", "number",
                            name=op.f("uq_subscription_event_subscription_id")),
    )


def downgrade() -> None:
    op.drop_table("subscription_event")
    op.drop_index(op.f("ix_subscription_next_attempt_at"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_topic"), table_name="subscription")
    op.drop_index(op.f("ix_subscription_client_id"), table_name="subscription")
    op.drop_table("subscription")
