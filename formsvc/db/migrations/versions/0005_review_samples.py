"""review samples: values reviewers confirmed, with their box crops, for retraining the recogniser

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("field", sa.String(length=120), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("read_value", sa.JSON(), nullable=True),
        sa.Column("crop_sha256", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["records.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_samples", schema=None) as batch_op:
        batch_op.create_index("ix_review_samples_record_id", ["record_id"], unique=False)
        batch_op.create_index("ix_review_samples_unit", ["unit", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("review_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_review_samples_unit")
        batch_op.drop_index("ix_review_samples_record_id")
    op.drop_table("review_samples")
