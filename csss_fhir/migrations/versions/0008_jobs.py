"""jobs: background classification and mail bookkeeping; AI re-runs and "Not assessable"

Revision ID: 0008_jobs
Revises: 0007_prescribing

- `ai_job`: one row per scan the background job classifies (attempts, last error, claim).
- `ai_prediction`: several per scan (a doctor's re-run supersedes the previous proposal);
  the assessability verdict and its reason; no requesting user for the job's own run, and
  no model Device for an image no model could read.
- `mail_message.data_started_at`: the sender reached DATA (a lost sender may have sent it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0008_jobs"
down_revision = "0007_prescribing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_job",
        sa.Column("scan_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", csss_fhir.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("due_at", csss_fhir.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", csss_fhir.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["scan_id"], ["scan.id"], name=op.f("fk_ai_job_scan_id_scan")),
        sa.PrimaryKeyConstraint("scan_id", name=op.f("pk_ai_job")),
    )
    with op.batch_alter_table("ai_job") as batch:
        batch.create_index(batch.f("ix_ai_job_due_at"), ["due_at"], unique=False)
    # Scans already waiting for the AI get their job row, due now: the first sweep runs them.
    task = sa.table("task", sa.column("scan_id"), sa.column("state"))
    ai_job = sa.table("ai_job", sa.column("scan_id"), sa.column("created_at"),
                      sa.column("attempts"), sa.column("due_at"))
    now = sa.func.current_timestamp()
    op.execute(ai_job.insert().from_select(
        ["scan_id", "created_at", "attempts", "due_at"],
        sa.select(task.c.scan_id, now, sa.literal(0), now).where(
            task.c.state == "PENDING_AI")))

    with op.batch_alter_table("ai_prediction") as batch:
        batch.drop_constraint("uq_ai_prediction_scan_id", type_="unique")
        batch.create_index(batch.f("ix_ai_prediction_scan_id"), ["scan_id"], unique=False)
        batch.alter_column("device_id", existing_type=sa.String(length=36), nullable=True)
        batch.alter_column("requested_by_id", existing_type=sa.String(length=36),
                           nullable=True)
        batch.add_column(sa.Column("assessable", sa.Boolean(), nullable=False,
                                   server_default=sa.true()))
        batch.add_column(sa.Column("reason", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("superseded_by_id", sa.String(length=36), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_ai_prediction_superseded_by_id_ai_prediction"), "ai_prediction",
            ["superseded_by_id"], ["id"])
    with op.batch_alter_table("ai_prediction") as batch:
        batch.alter_column("assessable", existing_type=sa.Boolean(), server_default=None)

    with op.batch_alter_table("mail_message") as batch:
        batch.add_column(sa.Column("data_started_at",
                                   csss_fhir.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mail_message") as batch:
        batch.drop_column("data_started_at")
    with op.batch_alter_table("ai_prediction") as batch:
        batch.drop_constraint(batch.f("fk_ai_prediction_superseded_by_id_ai_prediction"),
                              type_="foreignkey")
        batch.drop_column("superseded_by_id")
        batch.drop_column("reason")
        batch.drop_column("assessable")
        batch.alter_column("requested_by_id", existing_type=sa.String(length=36),
                           nullable=False)
        batch.alter_column("device_id", existing_type=sa.String(length=36), nullable=False)
        batch.drop_index(batch.f("ix_ai_prediction_scan_id"))
        batch.create_unique_constraint("uq_ai_prediction_scan_id", ["scan_id"])
    with op.batch_alter_table("ai_job") as batch:
        batch.drop_index(batch.f("ix_ai_job_due_at"))
    op.drop_table("ai_job")
