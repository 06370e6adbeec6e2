"""Consent in practice: break-glass policies and acts, studies and exports.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

State derived from the log: the patients' break-glass policies, the break-glass sessions
(with their review), the study exports, and the study terms of share grants (the patient's
pseudonym in the study and the study secret sealed to the grantee). On an existing ledger
the new tables start empty and the new permission columns null (no entry carried them
before this revision); `downgrade` refuses to run once any of them holds data, which
revision 0008 could not rebuild from the log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TABLES = ("state_break_glass_policies", "state_break_glass_sessions", "state_study_exports")


def upgrade() -> None:
    with op.batch_alter_table("state_permissions") as batch:
        batch.add_column(sa.Column("study_pseudonym", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("study_secret", sa.Text(), nullable=True))
    op.create_table(
        "state_break_glass_policies",
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("emergency_identity", sa.String(length=200), nullable=False),
        sa.Column("hospital", sa.String(length=200), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("roles", sa.String(length=64), nullable=False),
        sa.Column("max_minutes", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.String(length=27), nullable=False),
        sa.Column("not_after", sa.String(length=27), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "pseudonym", "emergency_identity", name=op.f("pk_state_break_glass_policies")
        ),
    )
    op.create_table(
        "state_break_glass_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("invoker", sa.String(length=200), nullable=False),
        sa.Column("emergency_identity", sa.String(length=200), nullable=False),
        sa.Column("hospital", sa.String(length=200), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("started_at", sa.String(length=27), nullable=False),
        sa.Column("ends_at", sa.String(length=27), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_state_break_glass_sessions")),
    )
    op.create_index(
        op.f("ix_state_break_glass_sessions_pseudonym"),
        "state_break_glass_sessions",
        ["pseudonym"],
    )
    op.create_table(
        "state_study_exports",
        sa.Column("export_id", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=200), nullable=False),
        sa.Column("study_pseudonym", sa.String(length=64), nullable=False),
        sa.Column("permission_id", sa.String(length=64), nullable=False),
        sa.Column("source_record_id", sa.String(length=64), nullable=False),
        sa.Column("exporter", sa.String(length=200), nullable=False),
        sa.Column("anonymise", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=63), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("locators", sa.Text(), nullable=False),
        sa.Column("capsule_sha256", sa.String(length=64), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("export_id", name=op.f("pk_state_study_exports")),
    )
    op.create_index(
        "ix_state_study_exports_study_id_study_pseudonym",
        "state_study_exports",
        ["study_id", "study_pseudonym"],
    )


def downgrade() -> None:
    bind = op.get_bind()
    for table in _TABLES:
        if bind.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar():
            raise RuntimeError(
                f"the ledger has break-glass or study-export entries ({table}); it cannot go"
                " back to revision 0008"
            )
    terms = bind.execute(
        sa.text("SELECT count(*) FROM state_permissions WHERE study_pseudonym IS NOT NULL")
    ).scalar()
    if terms:
        raise RuntimeError(
            "share grants carry study terms (study_pseudonym); the ledger cannot go back to"
            " revision 0008"
        )
    op.drop_index("ix_state_study_exports_study_id_study_pseudonym", "state_study_exports")
    op.drop_table("state_study_exports")
    op.drop_index(op.f("ix_state_break_glass_sessions_pseudonym"), "state_break_glass_sessions")
    op.drop_table("state_break_glass_sessions")
    op.drop_table("state_break_glass_policies")
    with op.batch_alter_table("state_permissions") as batch:
        batch.drop_column("study_secret")
        batch.drop_column("study_pseudonym")
