"""subscription version: meta.versionId and lastUpdated for Subscription

Revision ID: 0016_subscription_version
Revises: 0015_smart

Issue 16: a Subscription's status changes (requested -> active -> error) without a new
version, so clients could not tell by ETag or lastUpdated that it changed. `version_id`
counts the versions served (each kept in `resource_version`, for vread and `_history`),
`updated_at` is when the current one was made. A subscription made before this migration
is version 1, last updated when it was created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from csss_fhir.models.base import UTCDateTime

revision = "0016_subscription_version"
down_revision = "0015_smart"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.add_column(sa.Column("version_id", sa.Integer(), nullable=False,
                                   server_default="1"))
        batch.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE subscription SET updated_at = created_at")
    with op.batch_alter_table("subscription") as batch:
        batch.alter_column("version_id", existing_type=sa.Integer(), server_default=None)
        batch.alter_column("updated_at", existing_type=UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("subscription") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("version_id")
