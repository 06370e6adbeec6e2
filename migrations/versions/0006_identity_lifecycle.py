"""Identity lifecycle: un-suspension and identity key rotation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

`reinstate` needs no schema: it clears the suspension columns an identity already has.
`rotate_keys` replaces an identity's keys, so the state now records since which entry the
current keys hold (`state_identities.keys_since`, null for keys as enrolled) and keeps every
replaced key with the entries it was valid for (`state_retired_keys`), so that an old
signature is checked against the key valid at its index. Both are derived state: before
this revision no rotation existed, so every existing identity has `keys_since` null and the
new table starts empty, exactly as a replay of the log gives. `downgrade` refuses to run
once a rotation is on the ledger (revision 0005 could not represent it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("state_identities") as batch:
        batch.add_column(sa.Column("keys_since", sa.BigInteger(), nullable=True))
    op.create_table(
        "state_retired_keys",
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", sa.BigInteger(), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("encryption_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("identity_id", "valid_until", name=op.f("pk_state_retired_keys")),
    )


def downgrade() -> None:
    rows = op.get_bind().execute(sa.text("SELECT count(*) FROM state_retired_keys"))
    if rows.scalar():
        raise RuntimeError(
            "identity keys were rotated on this ledger (rotate_keys entries); it cannot go "
            "back to revision 0005"
        )
    op.drop_table("state_retired_keys")
    with op.batch_alter_table("state_identities") as batch:
        batch.drop_column("keys_since")
