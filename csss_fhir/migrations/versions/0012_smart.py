"""smart: clients that authenticate with a signed JWT (SMART Backend Services)

Revision ID: 0012_smart
Revises: 0011_fhir

- `api_client.jwks` holds a client's public keys; such a client may have no secret, so
  `secret_hash` becomes nullable;
- `used_client_assertion` keeps each accepted assertion's `jti` until it expires, so a
  captured assertion cannot be replayed (issue 16 item 4).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0012_smart"
down_revision = "0011_fhir"
branch_labels = None
depends_on = None

UTC_DATETIME = csss_fhir.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_client") as batch:
        batch.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
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


def downgrade() -> None:
    op.drop_table("used_client_assertion")
    # A JWKS-only client cannot sign in without a secret: it is removed, not left broken.
    op.execute(sa.text("DELETE FROM api_client WHERE secret_hash IS NULL"))
    with op.batch_alter_table("api_client") as batch:
        batch.alter_column("secret_hash", existing_type=sa.String(length=128), nullable=False)
        batch.drop_column("jwks")
