"""Witness cosignatures kept with the checkpoints they sign.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

The gateway keeps each witness's cosignature of each checkpoint it submitted, so a
restarted gateway serves its latest cosigned checkpoint at once and the evidence that the
log was witnessed stays with the log (in the same database, replicated with it). The table
is not derived from the log: on an existing ledger it starts empty and fills at the next
witnessing round. `downgrade` drops it (the witnesses cosign again after a restart).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_cosignatures",
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("witness", sa.String(length=255), nullable=False),
        sa.Column("key_id", sa.LargeBinary(length=4), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "origin", "tree_size", "root", "witness", "key_id", name=op.f("pk_gateway_cosignatures")
        ),
    )


def downgrade() -> None:
    op.drop_table("gateway_cosignatures")
