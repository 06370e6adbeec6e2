"""Transactions of break-glass and research sharing for the rule tables (test_rules.py).

Each helper submits what its case needs first (identities of a hospital, a policy, a share
grant with study terms) and returns the transaction under test."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from envelope import IdentityKeys
from ledger import Transaction
from ledger.wire import builders as b
from tests.ledger.conftest import World

HOUR = timedelta(hours=1)
EMERGENCY = "emergency@general"
STUDY_PSEUDONYM = "5e" * 32


def actor(w: World, identity_id: str, role: str) -> IdentityKeys:
    """An identity enrolled once per world (kept in w.extra by id)."""
    keys = getattr(w, "_consent_keys", None)
    if keys is None:
        keys = {}
        object.__setattr__(w, "_consent_keys", keys)
    if identity_id not in keys:
        keys[identity_id] = IdentityKeys.generate(identity_id, role)
        w.ledger.submit(b.enroll(w.admin, keys[identity_id].public(), issued_at=w.clock()))
    found: IdentityKeys = keys[identity_id]
    return found


def policy(w: World, signer: IdentityKeys | None = None, **overrides: Any) -> Transaction:
    actor(w, EMERGENCY, "system")
    fields: dict[str, Any] = {
        "pseudonym": w.pseudonym,
        "emergency_identity": EMERGENCY,
        "categories": ["lab-results"],
        "roles": ["clinician"],
        "max_minutes": 60,
        "not_before": w.clock() - HOUR,
        "not_after": w.clock() + 24 * HOUR,
        "issued_at": w.clock(),
    }
    fields.update(overrides)
    return b.break_glass_policy(signer or w.patient, **fields)


def act(
    w: World,
    *,
    invoker: tuple[str, str] = ("dr-er@general", "clinician"),
    opted_in: bool = True,
    **overrides: Any,
) -> Transaction:
    if opted_in:
        w.ledger.submit(policy(w))
    else:
        actor(w, EMERGENCY, "system")
    fields: dict[str, Any] = {
        "pseudonym": w.pseudonym,
        "emergency_identity": EMERGENCY,
        "reason": "unconscious-patient",
        "details": "brought in unconscious after a fall",
        "minutes": 30,
        "issued_at": w.clock(),
    }
    fields.update(overrides)
    return b.break_glass(actor(w, *invoker), **fields)


def review(w: World, reviewer: IdentityKeys | None = None, *, twice: bool = False) -> Transaction:
    opened = act(w)
    w.ledger.submit(opened)
    session_id = opened.body["session_id"]
    if twice:
        w.ledger.submit(b.break_glass_review(w.auditor, session_id=session_id,
                                             verdict="accepted", note="ok",
                                             issued_at=w.clock()))  # fmt: skip
    return b.break_glass_review(reviewer or w.auditor, session_id=session_id,
                                verdict="flagged", note="no emergency on file",
                                issued_at=w.clock())  # fmt: skip


def share_grant(w: World, **overrides: Any) -> Transaction:
    actor(w, "study-x", "study")
    fields: dict[str, Any] = {
        "pseudonym": w.pseudonym,
        "grantee": w.dr.id,
        "rights": ["read", "share"],
        "categories": ["lab-results"],
        "not_before": w.clock() - HOUR,
        "not_after": w.clock() + HOUR,
        "study_id": "study-x",
        "anonymise": False,
        "study_pseudonym": STUDY_PSEUDONYM,
        "study_secret": b"sealed study secret",
        "issued_at": w.clock(),
    }
    fields.update(overrides)
    return b.grant(w.patient, **fields)


def export(
    w: World,
    *,
    grant: dict[str, Any] | None = None,
    exporter: IdentityKeys | None = None,
    ended: bool = False,
    **overrides: Any,
) -> tuple[Transaction, bytes]:
    """A study_export of the world's record (with its capsule) under a new share grant
    (*ended*: one that ended a second before the export)."""
    if ended:
        grant = {**(grant or {}), "not_after": w.clock() + timedelta(seconds=1)}
    granted = share_grant(w, **(grant or {}))
    w.ledger.submit(granted)
    if ended:
        w.clock.advance(timedelta(seconds=2))
    record = w.ledger.cached_record(w.record_id)
    assert record is not None
    capsule = b"a capsule rewrapped for the study"
    fields: dict[str, Any] = {
        "permission_id": granted.body["permission_id"],
        "study_id": "study-x",
        "study_pseudonym": STUDY_PSEUDONYM,
        "source_record_id": w.record_id,
        "anonymise": bool(granted.body.get("anonymise")),
        "category": record.category,
        "created_at": record.created_at,
        "content_type": record.content_type,
        "body_sha256": record.body_sha256,
        "size": record.size,
        "locators": list(record.locators),
        "capsule_sha256": hashlib.sha256(capsule).hexdigest(),
        "issued_at": w.clock(),
    }
    fields.update(overrides)
    return b.study_export(exporter or w.dr, **fields), capsule
