"""fhir: keep what clients send; one MRN per assigning authority

Revision ID: 0011_fhir
Revises: 0010_blob_storage

- `patient.resource_json` and `prescription.resource_json` hold the resource a client
  created, so the elements our columns do not model are served back (issue 16 item 1);
- an MRN is unique per system (`uq_patient_mrn_system`), not across all systems, and every
  stored MRN names its system (the ones registered without one get ours, as rendered).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_fhir"
down_revision = "0010_blob_storage"
branch_labels = None
depends_on = None

MRN_SYSTEM = "urn:csss-fhir:mrn"


def upgrade() -> None:
    op.execute(sa.text("UPDATE patient SET mrn_system = :system "
                       "WHERE mrn IS NOT NULL AND mrn_system IS NULL").bindparams(
        system=MRN_SYSTEM))
    with op.batch_alter_table("patient") as batch:
        batch.add_column(sa.Column("resource_json", sa.JSON(), nullable=True))
        batch.drop_constraint("uq_patient_mrn", type_="unique")
        batch.create_unique_constraint("uq_patient_mrn_system", ["mrn_system", "mrn"])
    with op.batch_alter_table("prescription") as batch:
        batch.add_column(sa.Column("resource_json", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prescription") as batch:
        batch.drop_column("resource_json")
    with op.batch_alter_table("patient") as batch:
        batch.drop_constraint("uq_patient_mrn_system", type_="unique")
        batch.create_unique_constraint("uq_patient_mrn", ["mrn"])
        batch.drop_column("resource_json")
