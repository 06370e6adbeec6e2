"""Shared authentication state: challenges, tokens and rate limits across replicas.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_auth_challenges",
        sa.Column("challenge", sa.String(64), nullable=False),
        sa.Column("identity_id", sa.String(256), nullable=False),
        sa.Column("requester", sa.String(256), nullable=False),
        sa.Column("issued_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("challenge", name="pk_gateway_auth_challenges"),
    )
    op.create_index(
        "ix_gateway_auth_challenges_requester",
        "gateway_auth_challenges",
        ["identity_id", "requester"],
    )
    op.create_index(
        "ix_gateway_auth_challenges_expires_at", "gateway_auth_challenges", ["expires_at"]
    )
    op.create_table(
        "gateway_auth_tokens",
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("identity_id", sa.String(256), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_gateway_auth_tokens"),
    )
    op.create_index("ix_gateway_auth_tokens_expires_at", "gateway_auth_tokens", ["expires_at"])
    op.create_table(
        "gateway_rate_buckets",
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("full_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_gateway_rate_buckets"),
    )
    op.create_index("ix_gateway_rate_buckets_full_at", "gateway_rate_buckets", ["full_at"])


def downgrade() -> None:
    op.drop_table("gateway_rate_buckets")
    op.drop_table("gateway_auth_tokens")
    op.drop_table("gateway_auth_challenges")
