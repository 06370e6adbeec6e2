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


# --- notifications (gateway.notify) -------------------------------------------------------
# Times here are Unix seconds of the machine's clock (scheduling), not ledger times.

notify_events = sa.Table(
    "notify_events",
    metadata,
    # the event's id: what a receiver deduplicates on
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    # the JSON payload every channel sends (ids and categories only)
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

notify_endpoints = sa.Table(
    "notify_endpoints",
    metadata,
    sa.Column("endpoint_id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False, index=True),
    sa.Column("url", sa.String(2048), nullable=False),
    # comma-joined event kinds the endpoint takes
    sa.Column("kinds", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

notify_deliveries = sa.Table(
    "notify_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(32), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    # "webhook" (target: an endpoint id) or "email" (target: an identity id)
    sa.Column("channel", sa.String(8), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    # "pending", "delivered" or "dead" (a dead letter, after the last attempt)
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    # a worker that claimed the delivery holds it until then
    sa.Column("lease_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("event_id", "channel", "target"),
    sa.Index("ix_notify_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

notify_contacts = sa.Table(
    "notify_contacts",
    metadata,
    sa.Column("identity_id", sa.String(200), primary_key=True),
    # nonce ‖ AES-256-GCM ciphertext of the e-mail address (key: settings.contact_key)
    sa.Column("sealed_email", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


rekey_deletions = sa.Table(
    "gateway_rekey_deletions",
    metadata,
    # a capsule a rekey replaces, and where the stores keep it: written before the rekey
    # commits, deleted once every copy is gone (gateway.rekeying)
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("locators", sa.Text, nullable=False),
    sa.Column("queued_at", sa.String(40), nullable=False),
)


# Witness cosignatures of the log's checkpoints (C2SP tlog-cosignature/v1), one row per
# witness and checkpoint: what `/v1/ledger/checkpoint` serves after a restart, and evidence
# that the log was witnessed at each size. The checkpoint is (origin, tree_size, root); the
# cosignature is the signature line without its newline (`— name base64(key id ‖ timestamp ‖
# signature)`).
cosignatures = sa.Table(
    "gateway_cosignatures",
    metadata,
    sa.Column("origin", sa.String(255), primary_key=True),
    sa.Column("tree_size", sa.BigInteger, primary_key=True),
    sa.Column("root", sa.LargeBinary(32), primary_key=True),
    sa.Column("witness", sa.String(255), primary_key=True),
    sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
    sa.Column("line", sa.Text, nullable=False),
    sa.Column("kept_at", sa.String(32), nullable=False),
)
