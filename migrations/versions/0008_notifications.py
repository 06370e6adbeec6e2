"""Notifications and answered access requests.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

The ledger's `state_access_requests` gains the requested period and the patient's answer
(`answer_request` entries): derived state, empty on existing rows since no entry carried
them before this revision. Beside the ledger, the gateway keeps its notification tables:
events to deliver, webhook endpoints, the delivery queue (with its dead letters) and
contact addresses (encrypted). None of those is derived from the log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_REQUEST_COLUMNS = ("not_before", "not_after", "decision", "permission_id", "answered_at")


def upgrade() -> None:
    with op.batch_alter_table("state_access_requests") as batch:
        batch.add_column(sa.Column("not_before", sa.String(length=27), nullable=True))
        batch.add_column(sa.Column("not_after", sa.String(length=27), nullable=True))
        batch.add_column(sa.Column("decision", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("permission_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "notify_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_notify_events")),
    )
    op.create_table(
        "notify_endpoints",
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("kinds", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", name=op.f("pk_notify_endpoints")),
    )
    op.create_index(op.f("ix_notify_endpoints_owner"), "notify_endpoints", ["owner"])
    op.create_table(
        "notify_deliveries",
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint(
            "event_id", "channel", "target", name=op.f("uq_notify_deliveries_event_id")
        ),
    )
    op.create_index(
        op.f("ix_notify_deliveries_status_next_attempt_at"),
        "notify_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "notify_contacts",
        sa.Column("identity_id", sa.String(length=200), nullable=False),
        sa.Column("sealed_email", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id", name=op.f("pk_notify_contacts")),
    )


def downgrade() -> None:
    rows = op.get_bind().execute(
        sa.text("SELECT count(*) FROM state_access_requests WHERE decision IS NOT NULL")
    )
    if rows.scalar():
        raise RuntimeError(
            "the ledger has answered access requests (answer_request entries); it cannot go"
            " back to revision 0007"
        )
    op.drop_table("notify_contacts")
    op.drop_index(op.f("ix_notify_deliveries_status_next_attempt_at"), "notify_deliveries")
    op.drop_table("notify_deliveries")
    op.drop_index(op.f("ix_notify_endpoints_owner"), "notify_endpoints")
    op.drop_table("notify_endpoints")
    op.drop_table("notify_events")
    with op.batch_alter_table("state_access_requests") as batch:
        for name in reversed(_REQUEST_COLUMNS):
            batch.drop_column(name)
