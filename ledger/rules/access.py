"""The rule of the `access` transaction: the gateway's audit entry of one read."""

from __future__ import annotations

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
from ledger.wire.shapes import ACCESS_ACTIONS
from ledger.wire.transactions import Transaction


def access(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(
        body,
        {"actor", "action", "pseudonym", "decision", "reason", "at"},
        frozenset({"record_id", "category"}),
    )
    require_role(signer_row(state, tx), "ledger")
    actor = ident_field(body, "actor")
    action = body["action"]
    if action not in ACCESS_ACTIONS:
        raise MalformedTransaction(f"body.action must be one of {', '.join(ACCESS_ACTIONS)}")
    pseudonym = hex64_field(body, "pseudonym")
    decision = body["decision"]
    if decision not in ("allowed", "denied"):
        raise MalformedTransaction('body.decision must be "allowed" or "denied"')
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
