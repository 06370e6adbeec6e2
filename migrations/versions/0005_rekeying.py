"""Re-keying: what a patient's key rotation keeps in the state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

A patient that rotates K starts a new generation of it with its first `publish_keys` of
that generation (`state_key_generations`: the current generation and that entry); the
published keys and the records say which generation their keys derive from, so a rotation
interrupted half-way is resumed from the state: every record whose `key_generation` is
older than the patient's is still to be rewrapped. Every existing row is of generation 1
(no rotation existed before this revision), so the columns start at 1 and the new table
empty; `downgrade` refuses to run once a rotation happened. Beside the ledger, the gateway
keeps `gateway_rekey_deletions`: the store copies of capsules a rekey replaces, until they
are deleted.
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
        "gateway_rekey_deletions",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("locators", sa.Text(), nullable=False),
        sa.Column("queued_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_gateway_rekey_deletions")),
    )
    op.create_table(
        "state_key_generations",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_state_key_generations")),
    )
    with op.batch_alter_table("state_records") as batch:
        batch.add_column(
            sa.Column("key_generation", sa.Integer(), nullable=False, server_default="1")
        )
        batch.create_index(
            "ix_state_records_pseudonym_key_generation", ["pseudonym", "key_generation"]
        )
    with op.batch_alter_table("state_published_keys") as batch:
        batch.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM state_key_generations"))
    if rows.scalar():
        raise RuntimeError(
            "a patient has rotated its key (publish_keys of a later generation); the ledger "
            "cannot go back to revision 0004"
        )
    with op.batch_alter_table("state_published_keys") as batch:
        batch.drop_column("generation")
    with op.batch_alter_table("state_records") as batch:
        batch.drop_index("ix_state_records_pseudonym_key_generation")
        batch.drop_column("key_generation")
    op.drop_table("state_key_generations")
    op.drop_table("gateway_rekey_deletions")
