"""dicom results: a released AI result as DICOM (SR and Grad-CAM image) and its PACS export

Revision ID: 0012_dicom_results
Revises: 0011_fhir

- `dicom_result`: one derived instance (kind "sr" or "sc") of a report version, filed in the
  scan's study; WADO-RS and QIDO-RS serve it.
- `pacs_export`: the C-STORE of one report version's instances to PACS_DESTINATION (state,
  attempts, back-off, claim), the `send_dicom` job's row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import csss_fhir.models

revision = "0012_dicom_results"
down_revision = "0011_fhir"
branch_labels = None
depends_on = None

_TIME = csss_fhir.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dicom_result",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("scan_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=36), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["scan_id"], ["scan.id"],
                                name=op.f("fk_dicom_result_scan_id_scan")),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"],
                                name=op.f("fk_dicom_result_patient_id_patient")),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"],
                                name=op.f("fk_dicom_result_report_id_report")),
        sa.ForeignKeyConstraint(["image_id"], ["blob.id"],
                                name=op.f("fk_dicom_result_image_id_blob")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dicom_result")),
        sa.UniqueConstraint("instance_uid", name=op.f("uq_dicom_result_instance_uid")),
    )
    with op.batch_alter_table("dicom_result") as batch:
        for column in ("scan_id", "patient_id", "report_id", "series_uid"):
            batch.create_index(batch.f(f"ix_dicom_result_{column}"), [column], unique=False)
    op.create_table(
        "pacs_export",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("report_version", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("due_at", _TIME, nullable=False),
        sa.Column("claimed_until", _TIME, nullable=True),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"],
                                name=op.f("fk_pacs_export_report_id_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pacs_export")),
        sa.UniqueConstraint("report_id", "report_version",
                            name=op.f("uq_pacs_export_report_id")),
    )
    with op.batch_alter_table("pacs_export") as batch:
        batch.create_index(batch.f("ix_pacs_export_state"), ["state"], unique=False)
        batch.create_index(batch.f("ix_pacs_export_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_table("pacs_export")
    op.drop_table("dicom_result")
