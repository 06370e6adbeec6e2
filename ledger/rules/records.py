"""Rules of the record transactions: record (a stored body's metadata) and rekey."""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import MalformedTransaction
from ledger.rules import erasure
from ledger.rules.actors import known_identity, owned_patient, require_role, signer_row
from ledger.rules.keys import current_generation
from ledger.rules.validators import (
    check_fields,
    deny,
    hex64_field,
    ident_field,
    locators_field,
    text_field,
    time_field,
)
from ledger.state import Changes, Row, StateView
from ledger.wire.shapes import RECORD_TX
from ledger.wire.transactions import Transaction

_RECORD_FIELDS = frozenset(RECORD_TX.required)
_RECORD_OPTIONAL = frozenset(RECORD_TX.optional)


def _size(body: dict[str, Any]) -> int:
    size = body["size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**53:
        raise MalformedTransaction("body.size must be a non-negative integer")
    return size


def _writer(state: StateView, tx: Transaction, signer: Row, on_behalf_of: Any) -> str:
    """Who writes the record: the signer, or the system the ledger signs on behalf of."""
    if on_behalf_of is None:
        return tx.signer
    system_id = ident_field(tx.body, "on_behalf_of")
    require_role(signer, "ledger")
    system = known_identity(state, system_id, "on_behalf_of")
    if system["suspended_at"] is not None:
        raise deny("suspended", f"identity {system_id!r} is suspended")
    return system_id


def _check_write_right(
    state: StateView, writer: str, patient: Row, category: str, now: str
) -> None:
    pseudonym = patient["pseudonym"]
    if writer == patient["identity_id"]:
        return
    decision = state.check(writer, "write", pseudonym, category, now)
    if not decision.allowed:
        raise deny(
            "not-granted",
            f"{writer!r} may not write {category} records of {pseudonym}: "
            f"{decision.reason}; the patient must grant a write right valid now",
        )


def record(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _RECORD_FIELDS, _RECORD_OPTIONAL)
    signer = signer_row(state, tx)
    record_id = ident_field(body, "record_id")
    pseudonym = hex64_field(body, "pseudonym")
    category = text_field(body, "category", max_len=63)
    body_sha256 = hex64_field(body, "body_sha256")
    capsule_sha256 = hex64_field(body, "capsule_sha256")
    content_type = text_field(body, "content_type", max_len=200)
    created_at = time_field(body, "created_at")
    size = _size(body)
    locators = locators_field(body)
    if category not in state.categories:
        raise deny(
            "unknown-category",
            f"unknown category {category!r}; known: {', '.join(state.categories.names())}",
        )
    patient = state.get("patients", pseudonym)
    if patient is None:
        raise deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    if state.get("records", record_id) is not None:
        raise deny("duplicate-record", f"record {record_id} already exists")
    on_behalf_of = body.get("on_behalf_of")
    _check_write_right(state, _writer(state, tx, signer, on_behalf_of), patient, category, now)
    out.put(
        "records",
        {
            "record_id": record_id,
            "pseudonym": pseudonym,
            "category": category,
            "body_sha256": body_sha256,
            "size": size,
            "locators": json.dumps(locators, separators=(",", ":")),
            "capsule_sha256": capsule_sha256,
            "content_type": content_type,
            "created_at": created_at,
            "uploader": tx.signer,
            "on_behalf_of": on_behalf_of,
            "entry_index": index,
            "rekeyed_at": None,
            "key_generation": current_generation(state, pseudonym),
        },
    )


def rekey(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    """The patient points its record at a rewrapped capsule, sealed to the keys of its
    current generation of K (body.generation, when given, must be that one)."""
    body = tx.body
    check_fields(body, {"record_id", "capsule_sha256"}, frozenset({"generation"}))
    signer_row(state, tx)
    record_id = ident_field(body, "record_id")
    capsule_sha256 = hex64_field(body, "capsule_sha256")
    row = state.get("records", record_id)
    if row is None:
        raise deny("unknown-record", f"record {record_id} does not exist")
    owned_patient(state, tx, row["pseudonym"])
    erasure.refuse_if_erased(state, record_id)
    current = current_generation(state, row["pseudonym"])
    generation = body.get("generation", current)
    if not isinstance(generation, int) or isinstance(generation, bool):
        raise MalformedTransaction("body.generation must be a positive integer")
    if generation != current:
        raise deny(
            "stale-key-generation",
            f"the capsule is sealed to generation {generation} of the patient's key, but the "
            f"current generation is {current}: rewrap it to the current keys",
        )
    out.put(
        "records",
        {
            **row,
            "capsule_sha256": capsule_sha256,
            "rekeyed_at": index,
            "key_generation": generation,
        },
    )
