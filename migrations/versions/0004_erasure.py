"""Erasure: the state table of `erase` entries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

An `erase` entry (the patient, or an admin with a legal reason) marks a record, or every
record of a pseudonym, as erased; the state keeps one row per erased record with the scope
of the erase, who signed it and the index of the entry. The table is derived state: on an
existing ledger it starts empty (no `erase` entry existed before this revision), and
`downgrade` refuses to run while it has rows (revision 0003 could not rebuild them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_erasures",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("erased_by", sa.String(length=200), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_state_erasures")),
    )
    op.create_index(
        op.f("ix_state_erasures_pseudonym"), "state_erasures", ["pseudonym"], unique=False
    )


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM state_erasures"))
    if rows.scalar():
        raise RuntimeError(
            "the ledger has erased records (erase entries); it cannot go back to revision 0003"
        )
    op.drop_index(op.f("ix_state_erasures_pseudonym"), table_name="state_erasures")
    op.drop_table("state_erasures")
