"""The ledger's database schema (SQLAlchemy Core), the source Alembic migrations follow.

Log tables — `ledger_entries`, `ledger_blocks`, `ledger_nodes` — are append-only: the code
has no UPDATE or DELETE for them. `ledger_head` is a single row naming the current block,
locked by each writer so that two processes cannot both append the next block. State tables
are derived from the log and rebuilt by a replay; `ledger_capsules` holds capsule bytes,
which are not on the log (only their SHA-256 is) so that erasure can delete them.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger import state_tables

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

Hash = sa.LargeBinary(32)
Index64 = sa.BigInteger()

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("idx", Index64, primary_key=True, autoincrement=False),
    sa.Column("block_height", Index64, nullable=False),
    sa.Column("tx_id", sa.String(32), nullable=False),
    sa.Column("tx_type", sa.String(32), nullable=False),
    sa.Column("signer", sa.String(200), nullable=False),
    sa.Column("tx", sa.LargeBinary, nullable=False),
    sa.Column("leaf_hash", Hash, nullable=False),
    sa.UniqueConstraint("tx_id"),
)

blocks = sa.Table(
    "ledger_blocks",
    metadata,
    sa.Column("height", Index64, primary_key=True, autoincrement=False),
    sa.Column("previous_hash", Hash, nullable=False),
    sa.Column("tree_size", Index64, nullable=False),
    sa.Column("root", Hash, nullable=False),
    sa.Column("timestamp", sa.String(27), nullable=False),
    sa.Column("signature", sa.LargeBinary(64), nullable=False),
    sa.Column("block_hash", Hash, nullable=False),
    sa.UniqueConstraint("tree_size"),
)

nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("idx", Index64, primary_key=True, autoincrement=False),
    sa.Column("hash", Hash, nullable=False),
)

head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("height", Index64, nullable=False),
    sa.Column("tree_size", Index64, nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)

identities = sa.Table(
    "state_identities",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("signing_key", sa.String(64), nullable=False),
    sa.Column("encryption_key", sa.Text, nullable=True),
    sa.Column("enrolled_at", Index64, nullable=False),
    sa.Column("suspended_at", Index64, nullable=True),
    sa.Column("suspended_reason", sa.Text, nullable=True),
    # the entry that rotated the identity's keys to the current ones (None: as enrolled)
    sa.Column("keys_since", Index64, nullable=True),
)

retired_keys = sa.Table(
    "state_retired_keys",
    metadata,
    sa.Column("identity_id", sa.String(200), primary_key=True),
    sa.Column("valid_from", Index64, nullable=False),
    sa.Column("valid_until", Index64, primary_key=True),
    sa.Column("signing_key", sa.String(64), nullable=False),
    sa.Column("encryption_key", sa.Text, nullable=True),
)

patients = sa.Table(
    "state_patients",
    metadata,
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("identity_id", sa.String(200), nullable=False, index=True),
    sa.Column("record_public_key", sa.Text, nullable=False),
    sa.Column("registered_at", Index64, nullable=False),
)

permissions = sa.Table(
    "state_permissions",
    metadata,
    sa.Column("permission_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    sa.Column("grantee", sa.String(200), nullable=False),
    sa.Column("rights", sa.String(32), nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("not_before", sa.String(27), nullable=False),
    sa.Column("not_after", sa.String(27), nullable=False),
    sa.Column("study_id", sa.String(200), nullable=True),
    sa.Column("anonymise", sa.Boolean, nullable=True),
    sa.Column("granted_at", Index64, nullable=False),
    sa.Column("revoked_at", Index64, nullable=True),
    sa.Column("study_pseudonym", sa.String(64), nullable=True),
    sa.Column("study_secret", sa.Text, nullable=True),
    sa.Index("ix_state_permissions_pseudonym_grantee", "pseudonym", "grantee"),
)

records = sa.Table(
    "state_records",
    metadata,
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(64), nullable=False),
    sa.Column("category", sa.String(63), nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("size", Index64, nullable=False),
    sa.Column("locators", sa.Text, nullable=False),
    sa.Column("capsule_sha256", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.Column("uploader", sa.String(200), nullable=False),
    sa.Column("on_behalf_of", sa.String(200), nullable=True),
    sa.Column("entry_index", Index64, nullable=False),
    sa.Column("rekeyed_at", Index64, nullable=True),
    # the generation of the patient's K whose keys the capsule is sealed to (re-keying)
    sa.Column("key_generation", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_state_records_pseudonym_category", "pseudonym", "category"),
    sa.Index("ix_state_records_pseudonym_key_generation", "pseudonym", "key_generation"),
)

key_shares = sa.Table(
    "state_key_shares",
    metadata,
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("grantee", sa.String(200), primary_key=True),
    sa.Column("sealed_key", sa.Text, nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
)

published_keys = sa.Table(
    "state_published_keys",
    metadata,
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("category", sa.String(63), primary_key=True),
    sa.Column("period", sa.String(7), primary_key=True),
    # the key itself is in the publish_keys entry (entry_index); the state keeps its hash
    sa.Column("public_key_sha256", sa.String(64), nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
    # the generation of K the key derives from; a newer generation replaces it (re-keying)
    sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
)

key_generations = sa.Table(
    "state_key_generations",
    metadata,
    # a patient's current generation of K, once it rotated K (none: generation 1), and the
    # publish_keys entry that started it
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
)

access_events = sa.Table(
    "state_access_events",
    metadata,
    sa.Column("entry_index", Index64, primary_key=True, autoincrement=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    # None for a refused write or login that names no registered patient.
    sa.Column("pseudonym", sa.String(64), nullable=True, index=True),
    sa.Column("record_id", sa.String(64), nullable=True),
    sa.Column("category", sa.String(63), nullable=True),
    sa.Column("decision", sa.String(8), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.String(27), nullable=False),
)

access_requests = sa.Table(
    "state_access_requests",
    metadata,
    sa.Column("request_id", sa.String(32), primary_key=True),
    sa.Column("requester", sa.String(200), nullable=False),
    sa.Column("pseudonym", sa.String(64), nullable=False, index=True),
    sa.Column("rights", sa.String(32), nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
    # The requested period (both or neither), then the patient's answer, once.
    sa.Column("not_before", sa.String(27), nullable=True),
    sa.Column("not_after", sa.String(27), nullable=True),
    sa.Column("decision", sa.String(8), nullable=True),
    sa.Column("permission_id", sa.String(200), nullable=True),
    sa.Column("answered_at", Index64, nullable=True),
)

erasures = sa.Table(
    "state_erasures",
    metadata,
    sa.Column("record_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(64), nullable=False, index=True),
    # "record" (the erase named this record) or "patient" (it erased every record)
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("erased_by", sa.String(200), nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
)

break_glass_policies = sa.Table(
    "state_break_glass_policies",
    metadata,
    sa.Column("pseudonym", sa.String(64), primary_key=True),
    sa.Column("emergency_identity", sa.String(200), primary_key=True),
    sa.Column("hospital", sa.String(200), nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("roles", sa.String(64), nullable=False),
    sa.Column("max_minutes", sa.Integer, nullable=False),
    sa.Column("not_before", sa.String(27), nullable=False),
    sa.Column("not_after", sa.String(27), nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
)

break_glass_sessions = sa.Table(
    "state_break_glass_sessions",
    metadata,
    sa.Column("session_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(64), nullable=False, index=True),
    sa.Column("invoker", sa.String(200), nullable=False),
    sa.Column("emergency_identity", sa.String(200), nullable=False),
    sa.Column("hospital", sa.String(200), nullable=False),
    sa.Column("categories", sa.Text, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("started_at", sa.String(27), nullable=False),
    sa.Column("ends_at", sa.String(27), nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
    sa.Column("verdict", sa.String(16), nullable=True),
    sa.Column("reviewer", sa.String(200), nullable=True),
    sa.Column("review_note", sa.Text, nullable=True),
    sa.Column("reviewed_at", Index64, nullable=True),
)

study_exports = sa.Table(
    "state_study_exports",
    metadata,
    sa.Column("export_id", sa.String(64), primary_key=True),
    sa.Column("study_id", sa.String(200), nullable=False),
    sa.Column("study_pseudonym", sa.String(64), nullable=False),
    sa.Column("permission_id", sa.String(64), nullable=False),
    sa.Column("source_record_id", sa.String(64), nullable=False),
    sa.Column("exporter", sa.String(200), nullable=False),
    sa.Column("anonymise", sa.Boolean, nullable=False),
    sa.Column("category", sa.String(63), nullable=False),
    sa.Column("created_at", sa.String(27), nullable=False),
    sa.Column("content_type", sa.String(200), nullable=False),
    sa.Column("body_sha256", sa.String(64), nullable=False),
    sa.Column("size", Index64, nullable=False),
    sa.Column("locators", sa.Text, nullable=False),
    sa.Column("capsule_sha256", sa.String(64), nullable=False),
    sa.Column("entry_index", Index64, nullable=False),
    sa.Index("ix_state_study_exports_study_id_study_pseudonym", "study_id", "study_pseudonym"),
)

capsules = sa.Table(
    "ledger_capsules",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

STATE_TABLES: dict[str, sa.Table] = {
    name: metadata.tables[table.table] for name, table in state_tables.STATE_TABLES.items()
}
"""The state tables by the short name the rules and the digest use (ledger.state_tables)."""
