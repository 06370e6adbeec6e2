"""Tables the gateway keeps beside the ledger, in the ledger's database (SQLAlchemy Core).

None of them is derived from the log, and none is part of the state digest: they hold what a
running gateway needs that the ledger must not carry (operational state shared by replicas,
notification endpoints and deliveries, contact addresses kept encrypted). Alembic migrates
them together with `ledger.schema`; they use its naming convention so that constraints have
stable names.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.schema import NAMING_CONVENTION

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# --- shared authentication state (gateway.authstate) -----------------------------------------
# Times are seconds since the epoch (double precision): the rate-limit arithmetic happens in
# SQL, and every replica compares them the same way.

auth_challenges = sa.Table(
    "gateway_auth_challenges",
    metadata,
    sa.Column("challenge", sa.String(64), primary_key=True),
    sa.Column("identity_id", sa.String(256), nullable=False),
    sa.Column("requester", sa.String(256), nullable=False),
    sa.Column("issued_at", sa.Double(), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Index("ix_gateway_auth_challenges_requester", "identity_id", "requester"),
    sa.Index("ix_gateway_auth_challenges_expires_at", "expires_at"),
)

auth_tokens = sa.Table(
    "gateway_auth_tokens",
    metadata,
    sa.Column("digest", sa.LargeBinary(32), primary_key=True),
    sa.Column("identity_id", sa.String(256), nullable=False),
    sa.Column("expires_at", sa.Double(), nullable=False),
    sa.Index("ix_gateway_auth_tokens_expires_at", "expires_at"),
)

rate_buckets = sa.Table(
    "gateway_rate_buckets",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("tokens", sa.Double(), nullable=False),
    sa.Column("updated", sa.Double(), nullable=False),
    sa.Column("granted", sa.Boolean(), nullable=False),
    # When the bucket is full again: from then on the row carries no information.
    sa.Column("full_at", sa.Double(), nullable=False),
    sa.Index("ix_gateway_rate_buckets_full_at", "full_at"),
)
