"""storage: blob contents in the database (STORAGE_BACKEND=postgresql)

Revision ID: 0010_blob_storage
Revises: 0009_hardening
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from csss_fhir.models.base import UTCDateTime

revision = "0010_blob_storage"
down_revision = "0009_hardening"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_content",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob_content")),
    )
    op.create_index(op.f("ix_blob_content_stored_at"), "blob_content", ["stored_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_blob_content_stored_at"), table_name="blob_content")
    op.drop_table("blob_content")
