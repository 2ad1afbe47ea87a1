"""security: lockout, TOTP, token deny-list, system clients, audit events

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UTC_DATETIME = csss_fhir.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "auth_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("lock_count", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTC_DATETIME, nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_throttle")),
    )
    op.create_table(
        "totp_credential",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=255), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_totp_credential_user_id_user_account")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_totp_credential")),
    )
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_token")),
    )
    with op.batch_alter_table("revoked_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revoked_token_expires_at"), ["expires_at"],
                              unique=False)
    op.create_table(
        "api_client",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.String(length=1000), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client")),
        sa.UniqueConstraint("name", name=op.f("uq_api_client_name")),
    )
    op.create_table(
        "audit_event",
        sa.Column("recorded", UTC_DATETIME, nullable=False),
        sa.Column("type_code", sa.String(length=20), nullable=False),
        sa.Column("subtype_code", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("agent_reference", sa.String(length=80), nullable=True),
        sa.Column("agent_client_id", sa.String(length=36), nullable=True),
        sa.Column("agent_role", sa.String(length=20), nullable=True),
        sa.Column("source_address", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.String(length=36), nullable=True),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("query", sa.String(length=2000), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        for column in ("recorded", "agent_reference", "agent_client_id", "patient_id"):
            batch_op.create_index(batch_op.f(f"ix_audit_event_{column}"), [column],
                                  unique=False)


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("api_client")
    op.drop_table("revoked_token")
    op.drop_table("totp_credential")
    op.drop_table("auth_throttle")
