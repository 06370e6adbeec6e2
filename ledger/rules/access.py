"""The rule of the `access` transaction: the gateway's audit entry of one read, or of one
refused write or login.

A read names the patient it reads (its pseudonym) and is allowed or denied. A refused
write or login (`REFUSED_ACTIONS`) is only ever denied, and names a pseudonym only when
there is a patient to name; every other member is checked the same way for both."""

from __future__ import annotations

from typing import Any

from ledger.errors import MalformedTransaction
from ledger.rules.actors import known_identity, require_role, signer_row
from ledger.rules.validators import (
    check_fields,
    hex64_field,
    ident_field,
    text_field,
    time_field,
)
from ledger.state import Changes, StateView
from ledger.wire.shapes import ACCESS_ACTIONS, REFUSED_ACTIONS
from ledger.wire.transactions import Transaction


def _decision(body: dict[str, Any], action: str) -> str:
    decision = body["decision"]
    if decision not in ("allowed", "denied"):
        raise MalformedTransaction('body.decision must be "allowed" or "denied"')
    if action in REFUSED_ACTIONS and decision != "denied":
        raise MalformedTransaction(f'body.decision of a {action} access entry must be "denied"')
    return str(decision)


def _pseudonym(body: dict[str, Any], action: str) -> str | None:
    """The patient named: required for a read, optional (but well formed) for a refusal."""
    if action in REFUSED_ACTIONS and "pseudonym" not in body:
        return None
    return hex64_field(body, "pseudonym")


_REQUIRED = frozenset({"actor", "action", "decision", "reason", "at"})
_OPTIONAL = frozenset({"pseudonym", "record_id", "category"})


def access(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _REQUIRED, _OPTIONAL)
    require_role(signer_row(state, tx), "ledger")
    actor = ident_field(body, "actor")
    action = body["action"]
    if action not in ACCESS_ACTIONS:
        raise MalformedTransaction(f"body.action must be one of {', '.join(ACCESS_ACTIONS)}")
    decision = _decision(body, action)
    pseudonym = _pseudonym(body, action)
    reason = text_field(body, "reason")
    at = time_field(body, "at")
    record_id = body.get("record_id")
    category = body.get("category")
    if record_id is not None:
        ident_field(body, "record_id")
    if category is not None:
        text_field(body, "category", max_len=63)
    known_identity(state, actor, "actor")
    out.put(
        "access_events",
        {
            "entry_index": index,
            "actor": actor,
            "action": action,
            "pseudonym": pseudonym,
            "record_id": record_id,
            "category": category,
            "decision": decision,
            "reason": reason,
            "at": at,
        },
    )
