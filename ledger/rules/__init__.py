"""The ledger's rules ("chaincode"): pure functions from (state, transaction, now) to the
changes the transaction makes, or a RuleViolation saying what to do instead.

`apply(state, tx, now, index)` reads the state through `StateView` and never writes it; the
caller evolves an overlay with the returned `Changes`. *now* is the commit time of the
block (a ledger time string) and *index* the log position the entry will take, so a replay
of the log reproduces the same state.

The rules of each group of transactions live in their own module — `identities` (genesis,
enroll, suspend, register_patient, reinstate, rotate_keys), `consent` (grant, revoke,
key_share, access_request, answer_request), `records` (record, rekey), `keys` (publish_keys,
a key share's scope), `erasure` (erase), `emergency` (break-glass policy, act and review),
`research` (study terms, study_export) and `access` — on
the field checks of `validators` and the signer and owner checks of `actors`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta

from ledger.rules import access, consent, emergency, erasure, identities, keys, records, research
from ledger.rules.actors import signing_key_bytes
from ledger.rules.validators import deny
from ledger.state import Changes, StateView
from ledger.wire.clock import check_time, format_time, parse_time
from ledger.wire.transactions import Transaction

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far a transaction's issued_at may be ahead of the ledger's clock."""

Rule = Callable[[StateView, Transaction, str, int, Changes], None]

RULES: dict[str, Rule] = {
    "genesis": identities.genesis,
    "enroll": identities.enroll,
    "suspend": identities.suspend,
    "register_patient": identities.register_patient,
    "grant": consent.grant,
    "revoke": consent.revoke,
    "key_share": consent.key_share,
    "record": records.record,
    "access": access.access,
    "access_request": consent.access_request,
    "rekey": records.rekey,
    "publish_keys": keys.publish_keys,
    "erase": erasure.erase,
    "reinstate": identities.reinstate,
    "rotate_keys": identities.rotate_keys,
    "answer_request": consent.answer_request,
    "break_glass_policy": emergency.break_glass_policy,
    "break_glass": emergency.break_glass,
    "break_glass_review": emergency.break_glass_review,
    "study_export": research.study_export,
}


@functools.lru_cache(maxsize=64)
def _latest_acceptable(now: str, skew: timedelta) -> str:
    return format_time(parse_time(now, "now") + skew)


def apply(
    state: StateView,
    tx: Transaction,
    now: str,
    index: int,
    *,
    max_clock_skew: timedelta = MAX_CLOCK_SKEW,
) -> Changes:
    """The changes *tx* makes to *state* when committed at *now* as entry *index*.

    Raises RuleViolation (or its MalformedTransaction) and changes nothing otherwise.
    """
    issued_at = check_time(tx.body.get("issued_at"), "body.issued_at")
    # Ledger times sort as text, so the skew check is a string comparison.
    if issued_at > _latest_acceptable(now, max_clock_skew):
        raise deny(
            "from-the-future",
            f"issued_at {tx.body['issued_at']} is ahead of the ledger clock ({now}) by more "
            f"than {max_clock_skew}; check the signer's clock",
        )
    if state.tx_id_used(tx.tx_id):
        raise deny("replayed", f"transaction {tx.tx_id} was already committed")
    if tx.type != "genesis" and state.is_empty():
        raise deny("no-genesis", "the ledger has no genesis entry yet")
    changes = Changes(tx.tx_id)
    RULES[tx.type](state, tx, now, index, changes)
    return changes


__all__ = ["MAX_CLOCK_SKEW", "RULES", "Rule", "apply", "signing_key_bytes"]
