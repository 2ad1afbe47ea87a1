"""reports and mail: outbox retry bookkeeping, report amendments

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_message") as batch:
        batch.add_column(sa.Column("next_attempt_at", csss_fhir.models.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.add_column(sa.Column("claimed_until", csss_fhir.models.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.create_index(batch.f("ix_mail_message_next_attempt_at"), ["next_attempt_at"],
                           unique=False)
    op.create_table(
        "report_amendment",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("created_at", csss_fhir.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("finding", sa.String(length=100), nullable=True),
        sa.Column("pdf_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["user_account.id"],
                                name=op.f("fk_report_amendment_author_id_user_account")),
        sa.ForeignKeyConstraint(["pdf_id"], ["blob.id"],
                                name=op.f("fk_report_amendment_pdf_id_blob")),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"],
                                name=op.f("fk_report_amendment_report_id_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_amendment")),
    )
    with op.batch_alter_table("report_amendment") as batch:
        batch.create_index(batch.f("ix_report_amendment_report_id"), ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_amendment") as batch:
        batch.drop_index(batch.f("ix_report_amendment_report_id"))
    op.drop_table("report_amendment")
    with op.batch_alter_table("mail_message") as batch:
        batch.drop_index(batch.f("ix_mail_message_next_attempt_at"))
        batch.drop_column("claimed_until")
        batch.drop_column("next_attempt_at")
