"""Rules of break-glass access: the patient's policy, the clinician's act, the review.

- `break_glass_policy` (the patient): opts in to emergency access through one hospital's
  emergency identity (a `system` identity ``name@hospital``): the categories it covers, the
  roles that may invoke it, the longest one act may last, and the period the policy holds.
  A newer policy for the same emergency identity replaces the older one (a policy ending now
  withdraws it). The patient also shares the scoped keys of those categories with the
  emergency identity (`key_share`), which `covers` allows.
- `break_glass` (a clinician, or a system if the policy allows): names the patient, the
  emergency identity, a reason from `REASONS`, details in words and a duration. Allowed
  only for an invoker of the emergency identity's hospital (`ledger.wire.emergency`) with a
  role the policy names, within the policy's maximum, while the policy holds. It opens a
  session from the commit time for that many minutes; nothing needs to close it.
- `break_glass_review` (an auditor or admin): accepts or flags a session, once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.errors import MalformedTransaction
from ledger.rules.actors import known_identity, owned_patient, signer_row
from ledger.rules.validators import (
    categories_field,
    check_fields,
    deny,
    hex64_field,
    ident_field,
    joined,
    text_field,
    time_field,
)
from ledger.state import Changes, Row, StateView
from ledger.wire.clock import format_time, parse_time
from ledger.wire.emergency import INVOKING_ROLES, MAX_POLICY_MINUTES, REASONS, hospital_of
from ledger.wire.scoped import grant_months
from ledger.wire.transactions import Transaction

VERDICTS = ("accepted", "flagged")
REVIEWER_ROLES = ("auditor", "admin")


def _minutes(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_POLICY_MINUTES:
        raise MalformedTransaction(
            f"body.{name} must be a whole number of minutes from 1 to {MAX_POLICY_MINUTES}"
        )
    return value


def _roles(body: dict[str, Any]) -> list[str]:
    value = body.get("roles")
    if (
        not isinstance(value, list)
        or not value
        or any(role not in INVOKING_ROLES for role in value)
        or value != sorted(set(value))
    ):
        raise MalformedTransaction(
            f"body.roles must be a sorted, non-empty list drawn from {', '.join(INVOKING_ROLES)}"
        )
    return value


def _hospital(identity_id: str, what: str) -> str:
    hospital = hospital_of(identity_id)
    if hospital is None:
        raise deny(
            "not-of-hospital",
            f"{what} {identity_id!r} names no hospital: its id must be name@hospital",
        )
    return hospital


def break_glass_policy(
    state: StateView, tx: Transaction, now: str, index: int, out: Changes
) -> None:
    body = tx.body
    check_fields(
        body,
        {"pseudonym", "emergency_identity", "categories", "roles", "max_minutes",
         "not_before", "not_after"},
    )  # fmt: skip
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    emergency = ident_field(body, "emergency_identity")
    categories = categories_field(state, body)
    roles = _roles(body)
    max_minutes = _minutes(body, "max_minutes")
    not_before, not_after = time_field(body, "not_before"), time_field(body, "not_after")
    owned_patient(state, tx, pseudonym)
    if not_before >= not_after:
        raise deny("empty-interval", "not_before must be earlier than not_after")
    row = known_identity(state, emergency, "emergency identity")
    if row["role"] != "system":
        raise deny(
            "wrong-role",
            f"the emergency identity {emergency!r} is a {row['role']}; it must be a hospital "
            "system identity",
        )
    hospital = _hospital(emergency, "the emergency identity")
    out.put(
        "break_glass_policies",
        {
            "pseudonym": pseudonym,
            "emergency_identity": emergency,
            "hospital": hospital,
            "categories": joined(categories),
            "roles": joined(roles),
            "max_minutes": max_minutes,
            "not_before": not_before,
            "not_after": not_after,
            "entry_index": index,
        },
    )


def live_policy(state: StateView, pseudonym: str, emergency: str, now: str) -> Row | None:
    policy = state.get("break_glass_policies", (pseudonym, emergency))
    if policy is None or not policy["not_before"] <= now < policy["not_after"]:
        return None
    return policy


def covers(
    state: StateView, pseudonym: str, grantee: str, category: str, period: str, now: str
) -> bool:
    """Whether a live break-glass policy lets *grantee* (its emergency identity) hold the
    key of (*category*, *period*): its categories, its months."""
    policy = state.get("break_glass_policies", (pseudonym, grantee))
    if policy is None or policy["not_after"] <= now:
        return False
    categories = str(policy["categories"])
    first, last = grant_months(policy["not_before"], policy["not_after"])
    return (categories == "all" or category in categories.split(",")) and (first <= period <= last)


def break_glass(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(
        body, {"session_id", "pseudonym", "emergency_identity", "reason", "details", "minutes"}
    )
    signer = signer_row(state, tx)
    session_id = ident_field(body, "session_id")
    pseudonym = hex64_field(body, "pseudonym")
    emergency = ident_field(body, "emergency_identity")
    reason = body.get("reason")
    if reason not in REASONS:
        raise MalformedTransaction(
            f"body.reason {reason!r} is not a break-glass reason; choose one of "
            f"{', '.join(REASONS)} and explain in body.details"
        )
    details = text_field(body, "details")
    minutes = _minutes(body, "minutes")
    if state.get("patients", pseudonym) is None:
        raise deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    policy = live_policy(state, pseudonym, emergency, now)
    if policy is None:
        raise deny(
            "not-opted-in",
            f"the patient did not opt in to break-glass access through {emergency!r} (no "
            "break-glass policy of the patient holds now): the act is recorded and refused",
        )
    allowed_roles = str(policy["roles"]).split(",")
    if signer["role"] not in allowed_roles:
        raise deny(
            "wrong-role",
            f"the patient's break-glass policy lets only {' or '.join(allowed_roles)} "
            f"identities invoke it; {tx.signer!r} is a {signer['role']}",
        )
    if hospital_of(tx.signer) != policy["hospital"]:
        raise deny(
            "not-of-hospital",
            f"{tx.signer!r} is not of hospital {policy['hospital']!r}, whose emergency "
            f"identity {emergency!r} the policy names",
        )
    if minutes > policy["max_minutes"]:
        raise deny(
            "beyond-policy",
            f"the patient's policy allows at most {policy['max_minutes']} minutes of "
            f"break-glass access; ask for {policy['max_minutes']} or fewer",
        )
    if state.get("break_glass_sessions", session_id) is not None:
        raise deny("duplicate-session", f"break-glass session {session_id} already exists")
    ends_at = format_time(parse_time(now, "now") + timedelta(minutes=minutes))
    out.put(
        "break_glass_sessions",
        {
            "session_id": session_id,
            "pseudonym": pseudonym,
            "invoker": tx.signer,
            "emergency_identity": emergency,
            "hospital": policy["hospital"],
            "categories": policy["categories"],
            "reason": reason,
            "details": details,
            "started_at": now,
            "ends_at": ends_at,
            "entry_index": index,
            "verdict": None,
            "reviewer": None,
            "review_note": None,
            "reviewed_at": None,
        },
    )


def break_glass_review(
    state: StateView, tx: Transaction, now: str, index: int, out: Changes
) -> None:
    body = tx.body
    check_fields(body, {"session_id", "verdict", "note"})
    signer = signer_row(state, tx)
    if signer["role"] not in REVIEWER_ROLES:
        raise deny(
            "wrong-role",
            f"a {signer['role']} may not review break-glass acts; it needs the role auditor "
            "or admin",
        )
    session_id = ident_field(body, "session_id")
    verdict = body.get("verdict")
    if verdict not in VERDICTS:
        raise MalformedTransaction(f"body.verdict must be one of {', '.join(VERDICTS)}")
    note = text_field(body, "note")
    session = state.get("break_glass_sessions", session_id)
    if session is None:
        raise deny("unknown-session", f"there is no break-glass session {session_id}")
    if session["verdict"] is not None:
        raise deny(
            "already-reviewed",
            f"break-glass session {session_id} was already {session['verdict']} by "
            f"{session['reviewer']!r}",
        )
    out.put(
        "break_glass_sessions",
        {**session, "verdict": verdict, "reviewer": tx.signer, "review_note": note,
         "reviewed_at": index},
    )  # fmt: skip
