"""smart: clients that authenticate with a signed JWT (SMART Backend Services)

Revision ID: 0015_smart
Revises: 0014_subscriptions

- `api_client.jwks` holds a client's public keys; such a client may have no secret, so
  `secret_hash` becomes nullable;
- `api_client.redirect_uris` registers a SMART app's redirect URIs; `authorization_code`
  and `launch_context` hold App Launch codes and EHR launches (hashed, short-lived);
- `used_client_assertion` keeps each accepted assertion's `jti` until it expires, so a
  captured assertion cannot be replayed (issue 16 item 4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0015_smart"
down_revision = "0014_subscriptions"
branch_labels = None
depends_on = None

UTC_DATETIME = csss_fhir.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_client") as batch:
        batch.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("redirect_uris", sa.String(length=2000), nullable=True))
        batch.alter_column("secret_hash", existing_type=sa.String(length=128), nullable=True)
    op.create_table(
        "used_client_assertion",
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"],
                                name=op.f("fk_used_client_assertion_client_id_api_client")),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_used_client_assertion")),
    )
    with op.batch_alter_table("used_client_assertion") as batch:
        batch.create_index(batch.f("ix_used_client_assertion_expires_at"), ["expires_at"],
                           unique=False)
    op.create_table(
        "authorization_code",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("redirect_uri", sa.String(length=1000), nullable=False),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_client.id"],
                                name=op.f("fk_authorization_code_client_id_api_client")),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_authorization_code_user_id_user_account")),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_code")),
    )
    with op.batch_alter_table("authorization_code") as batch:
        batch.create_index(batch.f("ix_authorization_code_expires_at"), ["expires_at"],
                           unique=False)
    op.create_table(
        "launch_context",
        sa.Column("launch_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user_account.id"],
                                name=op.f("fk_launch_context_user_id_user_account")),
        sa.PrimaryKeyConstraint("launch_hash", name=op.f("pk_launch_context")),
    )
    with op.batch_alter_table("launch_context") as batch:
        batch.create_index(batch.f("ix_launch_context_expires_at"), ["expires_at"],
                           unique=False)


def downgrade() -> None:
    op.drop_table("launch_context")
    op.drop_table("authorization_code")
    op.drop_table("used_client_assertion")
    # A JWKS-only client cannot sign in without a secret: it is removed, not left broken.
    op.execute(sa.text("DELETE FROM api_client WHERE secret_hash IS NULL"))
    with op.batch_alter_table("api_client") as batch:
        batch.alter_column("secret_hash", existing_type=sa.String(length=128), nullable=False)
        batch.drop_column("redirect_uris")
        batch.drop_column("jwks")
