"""staged binary: a file posted as a FHIR Binary waits for the $upload that names it

Revision ID: 0013_staged_binary
Revises: 0012_dicom_results

`POST /fhir/Binary` keeps the bytes here, with who posted them, until an `$upload` with
`file = Binary/<id>` takes them (issue 16 item 5); that upload deletes the row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from csss_fhir.models.base import UTCDateTime

revision = "0013_staged_binary"
down_revision = "0012_dicom_results"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_binary",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("owner_user_id", sa.String(36),
                  sa.ForeignKey("user_account.id",
                                name="fk_staged_binary_owner_user_id_user_account"),
                  nullable=True),
        sa.Column("owner_client_id", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staged_binary"),
    )
    op.create_index("ix_staged_binary_owner_user_id", "staged_binary", ["owner_user_id"])


def downgrade() -> None:
    op.drop_index("ix_staged_binary_owner_user_id", table_name="staged_binary")
    op.drop_table("staged_binary")
