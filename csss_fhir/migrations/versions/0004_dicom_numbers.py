"""dicom: series and instance numbers of a scan

Revision ID: 0004
Revises: 0003

The revision id is "0004_dicom", not "0004": another branch head already uses "0004".
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan") as batch:
        batch.add_column(sa.Column("series_number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("instance_number", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan") as batch:
        batch.drop_column("instance_number")
        batch.drop_column("series_number")
