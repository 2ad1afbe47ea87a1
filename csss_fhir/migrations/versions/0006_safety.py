"""safety: return to the patient, send back to the doctor, priority, blind read

Revision ID: 0006_safety
Revises: 0004

A scan sent back to the doctor is verified again, and its pharmacy review done again: the
earlier rows stay (superseded), so doctor_review and pharmacy_review lose their one-per-scan
unique constraints and keep a plain index on scan_id.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_safety"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("priority", sa.String(length=10), nullable=False,
                                   server_default="routine"))
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("workflow_event") as batch:
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
    with op.batch_alter_table("doctor_review") as batch:
        batch.drop_constraint("uq_doctor_review_scan_id", type_="unique")
        batch.create_index("ix_doctor_review_scan_id", ["scan_id"], unique=False)
        batch.add_column(sa.Column("provisional_finding", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("superseded_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("pharmacy_review") as batch:
        batch.drop_constraint("uq_pharmacy_review_scan_id", type_="unique")
        batch.create_index("ix_pharmacy_review_scan_id", ["scan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("pharmacy_review") as batch:
        batch.drop_index("ix_pharmacy_review_scan_id")
        batch.create_unique_constraint("uq_pharmacy_review_scan_id", ["scan_id"])
    with op.batch_alter_table("doctor_review") as batch:
        batch.drop_column("superseded_reason")
        batch.drop_column("provisional_finding")
        batch.drop_index("ix_doctor_review_scan_id")
        batch.create_unique_constraint("uq_doctor_review_scan_id", ["scan_id"])
    with op.batch_alter_table("workflow_event") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("status_reason")
        batch.drop_column("priority")
