"""prescribing: structured doses, cancellations, formulary overrides; pending amendments

Revision ID: 0007_prescribing
Revises: 0006_safety

Prescriptions keep the dosage as sent, a status reason, their formulary warnings and the
override that accepted them; the pharmacy review keeps its override reason. A report
amendment waits for an administrator (pending_report_id, unique: one pending per report),
so its version and PDF are set only at approval; the report keeps the current finding.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0007_prescribing"
down_revision = "0006_safety"
branch_labels = None
depends_on = None

UTC_DATETIME = csss_fhir.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("prescription") as batch:
        batch.add_column(sa.Column("dosage_instruction", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dispense_request", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("status_reason", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("override_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("pharmacy_review") as batch:
        batch.add_column(sa.Column("override_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("report") as batch:
        batch.add_column(sa.Column("finding", sa.String(length=100), nullable=True))
    with op.batch_alter_table("report_amendment") as batch:
        batch.add_column(sa.Column("pending_report_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("approved_by_id", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("approved_at", UTC_DATETIME, nullable=True))
        batch.alter_column("report_version", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("pdf_id", existing_type=sa.String(length=36), nullable=True)
        batch.create_unique_constraint(batch.f("uq_report_amendment_pending_report_id"),
                                       ["pending_report_id"])
        batch.create_foreign_key(batch.f("fk_report_amendment_pending_report_id_report"),
                                 "report", ["pending_report_id"], ["id"])
        batch.create_foreign_key(batch.f("fk_report_amendment_approved_by_id_user_account"),
                                 "user_account", ["approved_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("report_amendment") as batch:
        batch.drop_constraint(batch.f("fk_report_amendment_approved_by_id_user_account"),
                              type_="foreignkey")
        batch.drop_constraint(batch.f("fk_report_amendment_pending_report_id_report"),
                              type_="foreignkey")
        batch.drop_constraint(batch.f("uq_report_amendment_pending_report_id"), type_="unique")
        batch.alter_column("pdf_id", existing_type=sa.String(length=36), nullable=False)
        batch.alter_column("report_version", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("approved_at")
        batch.drop_column("approved_by_id")
        batch.drop_column("pending_report_id")
    with op.batch_alter_table("report") as batch:
        batch.drop_column("finding")
    with op.batch_alter_table("pharmacy_review") as batch:
        batch.drop_column("override_reason")
    with op.batch_alter_table("prescription") as batch:
        batch.drop_column("override_reason")
        batch.drop_column("warnings")
        batch.drop_column("status_reason")
        batch.drop_column("dispense_request")
        batch.drop_column("dosage_instruction")
