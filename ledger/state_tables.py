"""The state model's tables as plain data: names, columns and keys, without SQLAlchemy.

The rules, the in-memory state, the state digest and offline verification need only these
names; `ledger.schema` declares the same tables for the database, and
tests/ledger/test_schema.py fails if the two disagree. The order of `STATE_TABLES` and of
each table's columns is the order the state digest hashes them in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StateTable:
    """One state table: its database name, its columns in order, and its key columns."""

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]


STATE_TABLES: dict[str, StateTable] = {
    "identities": StateTable(
        "state_identities",
        ("id", "role", "signing_key", "encryption_key", "enrolled_at", "suspended_at",
         "suspended_reason", "keys_since"),
        ("id",),
    ),
    "retired_keys": StateTable(
        "state_retired_keys",
        ("identity_id", "valid_from", "valid_until", "signing_key", "encryption_key"),
        ("identity_id", "valid_until"),
    ),
    "patients": StateTable(
        "state_patients",
        ("pseudonym", "identity_id", "record_public_key", "registered_at"),
        ("pseudonym",),
    ),
    "permissions": StateTable(
        "state_permissions",
        ("permission_id", "pseudonym", "grantee", "rights", "categories", "not_before",
         "not_after", "study_id", "anonymise", "granted_at", "revoked_at", "study_pseudonym",
         "study_secret"),
        ("permission_id",),
    ),
    "records": StateTable(
        "state_records",
        ("record_id", "pseudonym", "category", "body_sha256", "size", "locators",
         "capsule_sha256", "content_type", "created_at", "uploader", "on_behalf_of",
         "entry_index", "rekeyed_at", "key_generation"),
        ("record_id",),
    ),
    "key_shares": StateTable(
        "state_key_shares",
        ("pseudonym", "grantee", "sealed_key", "entry_index"),
        ("pseudonym", "grantee"),
    ),
    "published_keys": StateTable(
        "state_published_keys",
        ("pseudonym", "category", "period", "public_key_sha256", "entry_index", "generation"),
        ("pseudonym", "category", "period"),
    ),
    "key_generations": StateTable(
        "state_key_generations",
        ("pseudonym", "generation", "entry_index"),
        ("pseudonym",),
    ),
    "access_events": StateTable(
        "state_access_events",
        ("entry_index", "actor", "action", "pseudonym", "record_id", "category", "decision",
         "reason", "at"),
        ("entry_index",),
    ),
    "access_requests": StateTable(
        "state_access_requests",
        ("request_id", "requester", "pseudonym", "rights", "categories", "reason",
         "entry_index", "not_before", "not_after", "decision", "permission_id", "answered_at"),
        ("request_id",),
    ),
    "erasures": StateTable(
        "state_erasures",
        ("record_id", "pseudonym", "scope", "erased_by", "entry_index"),
        ("record_id",),
    ),
    "break_glass_policies": StateTable(
        "state_break_glass_policies",
        ("pseudonym", "emergency_identity", "hospital", "categories", "roles", "max_minutes",
         "not_before", "not_after", "entry_index"),
        ("pseudonym", "emergency_identity"),
    ),
    "break_glass_sessions": StateTable(
        "state_break_glass_sessions",
        ("session_id", "pseudonym", "invoker", "emergency_identity", "hospital", "categories",
         "reason", "details", "started_at", "ends_at", "entry_index", "verdict", "reviewer",
         "review_note", "reviewed_at"),
        ("session_id",),
    ),
    "study_exports": StateTable(
        "state_study_exports",
        ("export_id", "study_id", "study_pseudonym", "permission_id", "source_record_id",
         "exporter", "anonymise", "category", "created_at", "content_type", "body_sha256",
         "size", "locators", "capsule_sha256", "entry_index"),
        ("export_id",),
    ),
}  # fmt: skip
"""Tables derived from the log, by the short name the rules and the digest use."""
