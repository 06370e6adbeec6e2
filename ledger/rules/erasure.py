"""The rule of the `erase` transaction: one record, or every record of a patient, erased.

Who may erase: the patient who registered the pseudonym (signed by its identity key, like
a grant), or an admin who states the legal reason (`body.reason`, required of an admin,
kept on the log; it must name no person). What it erases:

* scope "record": the record `body.record_id`, which must belong to `body.pseudonym`;
* scope "patient" (the right to be forgotten): every record of the pseudonym not erased
  yet, as the state has them when the entry commits.

The entry changes only the state (one `erasures` row per erased record: scope, signer,
entry index); the log keeps every earlier entry as it was. Deleting the capsules (the
database's rows and the stores' copies) and the bodies is the gateway's part; a record
already erased cannot be erased again, nor rekeyed (`refuse_if_erased`).
"""

from __future__ import annotations

from ledger.errors import MalformedTransaction
from ledger.rules.actors import signer_row
from ledger.rules.validators import check_fields, deny, hex64_field, ident_field
from ledger.state import Changes, Row, StateView
from ledger.wire.shapes import ERASE_SCOPES, ERASE_TX
from ledger.wire.transactions import Transaction

MAX_REASON = 500
_FIELDS = set(ERASE_TX.required)
_OPTIONAL = frozenset(ERASE_TX.optional)


def _reason(body: dict[str, object]) -> str | None:
    value = body.get("reason")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON:
        raise MalformedTransaction(
            f"body.reason must be a non-blank legal reason of at most {MAX_REASON} characters"
        )
    return value


def _check_signer(state: StateView, tx: Transaction, signer: Row, patient: Row) -> None:
    """The owner of the pseudonym, or an admin with a reason; anyone else is refused."""
    if patient["identity_id"] == tx.signer:
        return
    if signer["role"] == "admin":
        if _reason(tx.body) is None:
            raise deny(
                "reason-required",
                "an admin erases a patient's records only with the legal reason recorded: "
                "give body.reason (the order or article applied, naming no person)",
            )
        return
    raise deny(
        "not-owner",
        f"only the patient who registered pseudonym {patient['pseudonym']}, or an admin "
        f"with a legal reason, may erase its records; {tx.signer!r} is neither",
    )


def refuse_if_erased(state: StateView, record_id: str) -> None:
    """Refuse a transaction about a record that an `erase` entry already erased."""
    erased = state.get("erasures", record_id)
    if erased is not None:
        raise deny(
            "already-erased",
            f"record {record_id} was erased by entry {erased['entry_index']}; nothing of it "
            "is left to act on",
        )


def _targets(state: StateView, body: dict[str, object], scope: str, pseudonym: str) -> list[str]:
    if scope == "record":
        record_id = ident_field(body, "record_id")
        record = state.get("records", record_id)
        if record is None or record["pseudonym"] != pseudonym:
            raise deny("unknown-record", f"pseudonym {pseudonym} has no record {record_id}")
        refuse_if_erased(state, record_id)
        return [record_id]
    if "record_id" in body:
        raise MalformedTransaction('body.record_id belongs to scope "record" only')
    every = state.record_ids_of(pseudonym)
    if not every:
        raise deny("nothing-to-erase", f"pseudonym {pseudonym} has no records")
    left = [rid for rid in every if state.get("erasures", rid) is None]
    if not left:
        raise deny("already-erased", f"every record of pseudonym {pseudonym} is already erased")
    return left


def erase(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _FIELDS, _OPTIONAL)
    signer = signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    scope = body["scope"]
    if scope not in ERASE_SCOPES:
        raise MalformedTransaction(
            f"body.scope must be one of {', '.join(ERASE_SCOPES)}, got {scope!r}"
        )
    _reason(body)
    patient = state.get("patients", pseudonym)
    if patient is None:
        raise deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    _check_signer(state, tx, signer, patient)
    for record_id in _targets(state, body, scope, pseudonym):
        out.put(
            "erasures",
            {
                "record_id": record_id,
                "pseudonym": pseudonym,
                "scope": scope,
                "erased_by": tx.signer,
                "entry_index": index,
            },
        )
