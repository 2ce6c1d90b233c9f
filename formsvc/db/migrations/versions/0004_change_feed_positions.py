"""feed positions given to changes after commit

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
    # Changes written before this revision were serialised at write time: their seq is already a valid position,
    # and records.change_seq already holds it.
    op.execute("UPDATE changes SET position = seq")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_position", ["position"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_position")
        batch_op.drop_column("position")
