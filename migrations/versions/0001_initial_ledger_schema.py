"""Initial ledger schema: the append-only log, the head row, derived state, capsules.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written by hand from `ledger.schema` (autogenerate must show no drift against it). Log
tables have no foreign keys to state tables: state is derived and may be rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

HASH = sa.LargeBinary(length=32)


def upgrade() -> None:
    # --- the log: append-only ------------------------------------------------------------
    op.create_table(
        "ledger_entries",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_height", sa.BigInteger(), nullable=False),
        sa.Column("tx_id", sa.String(length=32), nullable=False),
        sa.Column("tx_type", sa.String(length=32), nullable=False),
        sa.Column("signer", sa.String(length=200), nullable=False),
        sa.Column("tx", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("idx", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("tx_id", name=op.f("uq_ledger_entries_tx_id")),
    )
    op.create_table(
        "ledger_blocks",
        sa.Column("height", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("previous_hash", HASH, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root", HASH, nullable=False),
        sa.Column("timestamp", sa.String(length=27), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=64), nullable=False),
        sa.Column("block_hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("height", name=op.f("pk_ledger_blocks")),
        sa.UniqueConstraint("tree_size", name=op.f("uq_ledger_blocks_tree_size")),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", HASH, nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_ledger_nodes")),
    )
    # --- the single head row every writer locks ------------------------------------------
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("height", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ledger_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )
    op.bulk_insert(head, [{"id": 1, "height": -1, "tree_size": 0}])
    # --- capsule bytes: not on the log, deletable for erasure ----------------------------
    op.create_table(
        "ledger_capsules",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_ledger_capsules")),
    )
    # --- state derived from the log --------------------------------------------------------
    op.create_table(
        "state_identities",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("signing_key", sa.String(length=64), nullable=False),
        sa.Column("encryption_key", sa.Text(), nullable=True),
        sa.Column("enrolled_at", sa.BigInteger(), nullable=False),
        sa.Column("suspended_at", sa.BigInteger(), nullable=True),
        sa.Column("suspended_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_identities")),
    )
    op.create_table(
        "state_patients",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("record_public_key", sa.Text(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_state_patients")),
    )
    op.create_index(
        op.f("ix_state_patients_identity_id"), "state_patients", ["identity_id"], unique=False
    )
    op.create_table(
        "state_permissions",
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("grantee", sa.String(length=200), nullable=False),
        sa.Column("rights", sa.String(length=32), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("not_before", sa.String(length=27), nullable=False),
        sa.Column("not_after", sa.String(length=27), nullable=False),
        sa.Column("study_id", sa.String(length=200), nullable=True),
        sa.Column("anonymise", sa.Boolean(), nullable=True),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("permission_id", name=op.f("pk_state_permissions")),
    )
    op.create_index(
        "ix_state_permissions_pseudonym_grantee",
        "state_permissions",
        ["pseudonym", "grantee"],
        unique=False,
    )
    op.create_table(
        "state_records",
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=63), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("locators", sa.Text(), nullable=False),
        sa.Column("capsule_sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.Column("uploader", sa.String(length=200), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=200), nullable=True),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.Column("rekeyed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_state_records")),
    )
    op.create_index(
        "ix_state_records_pseudonym_category",
        "state_records",
        ["pseudonym", "category"],
        unique=False,
    )
    op.create_table(
        "state_key_shares",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("grantee", sa.String(length=200), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("pseudonym", "grantee", name=op.f("pk_state_key_shares")),
    )
    op.create_table(
        "state_access_events",
        sa.Column("entry_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=True),
        sa.Column("category", sa.String(length=63), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("entry_index", name=op.f("pk_state_access_events")),
    )
    op.create_index(
        op.f("ix_state_access_events_pseudonym"),
        "state_access_events",
        ["pseudonym"],
        unique=False,
    )
    op.create_table(
        "state_access_requests",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("rights", sa.String(length=32), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_state_access_requests")),
    )
    op.create_index(
        op.f("ix_state_access_requests_pseudonym"),
        "state_access_requests",
        ["pseudonym"],
        unique=False,
    )


def downgrade() -> None:
    for index, table in (
        ("ix_state_access_requests_pseudonym", "state_access_requests"),
        ("ix_state_access_events_pseudonym", "state_access_events"),
        ("ix_state_records_pseudonym_category", "state_records"),
        ("ix_state_permissions_pseudonym_grantee", "state_permissions"),
        ("ix_state_patients_identity_id", "state_patients"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "state_access_requests",
        "state_access_events",
        "state_key_shares",
        "state_records",
        "state_permissions",
        "state_patients",
        "state_identities",
        "ledger_capsules",
        "ledger_head",
        "ledger_nodes",
        "ledger_blocks",
        "ledger_entries",
    ):
        op.drop_table(table)
