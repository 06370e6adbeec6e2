"""An `access` entry may name no patient: state_access_events.pseudonym becomes nullable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A refused write or login by a known identity is audited as an `access` entry; when the act
names no registered patient (a login by a clinician, a write for an unregistered
pseudonym) the entry has no pseudonym. The table is derived state: existing rows keep
their values, and `downgrade` refuses to run while any row lacks a pseudonym (those rows
would have to be dropped, and the state digest would no longer match the log).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("state_access_events") as batch:
        batch.alter_column("pseudonym", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text("SELECT count(*) FROM state_access_events WHERE pseudonym IS NULL")
    )
    if rows.scalar():
        raise RuntimeError(
            "state_access_events has entries that name no patient (refused logins or writes);"
            " a ledger with such entries cannot go back to revision 0001"
        )
    with op.batch_alter_table("state_access_events") as batch:
        batch.alter_column("pseudonym", existing_type=sa.String(length=64), nullable=False)
