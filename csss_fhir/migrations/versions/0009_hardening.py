"""hardening: a per-user security stamp that ends older tokens

Revision ID: 0009_hardening
Revises: 0008_jobs

`user_account.token_generation` moves on when a password changes, an account is disabled or
enabled, or a role changes; every token carries the value it was issued with (`gen`), and a
token whose value is behind is refused.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_hardening"
down_revision = "0008_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.add_column(sa.Column("token_generation", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("user_account") as batch:
        batch.drop_column("token_generation")
