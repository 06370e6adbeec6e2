"""Published scoped record keys: the state table of `publish_keys` entries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

A patient publishes, signed, the public halves of its (category, month) record keys; the
state keeps, per (pseudonym, category, period), the SHA-256 of the published key and the
index of the entry that carries it. The table is derived state: on an existing ledger it
starts empty (no `publish_keys` entry existed before this revision), and `downgrade`
refuses to run while it has rows (they could not be rebuilt from the log by revision 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "state_published_keys",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=63), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("public_key_sha256", sa.String(length=64), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pseudonym", "category", "period", name=op.f("pk_state_published_keys")
        ),
    )


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM state_published_keys"))
    if rows.scalar():
        raise RuntimeError(
            "the ledger has published scoped keys (publish_keys entries); it cannot go back"
            " to revision 0002"
        )
    op.drop_table("state_published_keys")
