"""Rules of the identity transactions: genesis, enroll, suspend, register_patient,
reinstate and rotate_keys."""

from __future__ import annotations

from envelope import EnvelopeError, InvalidSignature, VerifyKey, b64decode
from ledger.errors import MalformedTransaction
from ledger.rules.actors import (
    identity_row,
    known_identity,
    public_identity,
    require_role,
    signer_row,
)
from ledger.rules.validators import (
    b64_field,
    check_fields,
    deny,
    hex64_field,
    ident_field,
    text_field,
)
from ledger.state import Changes, StateView
from ledger.wire.ids import RESERVED_IDS, is_patient_id
from ledger.wire.rotation import ROTATION_FIELDS, rotation_statement
from ledger.wire.transactions import Transaction


def _check_not_reserved(identity_id: str) -> None:
    if identity_id in RESERVED_IDS:
        raise deny(
            "reserved-identity",
            f"the identity id {identity_id!r} is reserved for the ledger's own key",
        )


def _check_staff_id(identity_id: str) -> None:
    """An identity other than a patient's has an id that is not reserved nor pseudonym-like."""
    _check_not_reserved(identity_id)
    if is_patient_id(identity_id):
        raise deny(
            "identity-id-form",
            f"the identity id {identity_id!r} has the form of a patient's id (64 lowercase "
            "hex characters, a pseudonym); choose another id, such as 'dr-house'",
        )


def _check_patient_id(identity_id: str, pseudonym: str) -> None:
    """A new patient's identity id is the pseudonym it registers."""
    if identity_id != pseudonym:
        raise deny(
            "identity-id-form",
            f"a patient's identity id is the pseudonym it registers first, not "
            f"{identity_id!r}; make the patient's keys with PatientKeys.generate or "
            "`ehrgate keys patient`, which name the identity by its pseudonym",
        )


def genesis(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"ledger", "admin"})
    if not state.is_empty() or index != 0:
        raise deny("genesis-exists", "this ledger already has a genesis entry")
    ledger = body["ledger"]
    if not isinstance(ledger, dict) or set(ledger) != {"id", "signing_public_key"}:
        raise MalformedTransaction("body.ledger must be {id, signing_public_key}")
    ledger_id = ident_field(ledger, "id")
    key = ledger["signing_public_key"]
    if not isinstance(key, str):
        raise MalformedTransaction("body.ledger.signing_public_key must be base64")
    try:
        raw_key = b64decode(key, length=32, what="body.ledger.signing_public_key")
    except EnvelopeError as exc:
        raise MalformedTransaction(str(exc)) from exc
    if tx.signer != ledger_id:
        raise deny("wrong-signer", "the genesis entry is signed by the ledger key it names")
    tx.verify_signature(raw_key)
    admin = public_identity(body["admin"], "body.admin")
    if admin.role != "admin":
        raise deny("wrong-role", "the genesis entry names an identity with the admin role")
    if admin.id == ledger_id:
        raise deny("duplicate-identity", "the first admin needs an id other than the ledger's")
    _check_staff_id(admin.id)
    out.put(
        "identities",
        {
            "id": ledger_id,
            "role": "ledger",
            "signing_key": key,
            "encryption_key": None,
            "enrolled_at": index,
            "suspended_at": None,
            "suspended_reason": None,
            "keys_since": None,
        },
    )
    out.put("identities", identity_row(admin, index))


def enroll(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    check_fields(tx.body, {"identity"})
    require_role(signer_row(state, tx), "admin")
    identity = public_identity(tx.body["identity"], "body.identity")
    if identity.role == "patient":
        raise deny("wrong-role", "patients are not enrolled: they register with register_patient")
    _check_staff_id(identity.id)
    if state.get("identities", identity.id) is not None:
        raise deny("duplicate-identity", f"identity {identity.id!r} is already enrolled")
    out.put("identities", identity_row(identity, index))


def suspend(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"identity_id", "reason"})
    require_role(signer_row(state, tx), "admin")
    target_id = ident_field(body, "identity_id")
    reason = text_field(body, "reason")
    target = known_identity(state, target_id, "identity")
    if target_id == tx.signer:
        raise deny("self-suspend", "an admin cannot suspend itself; ask another admin")
    if target["role"] == "ledger":
        raise deny("wrong-role", "the ledger's own identity cannot be suspended")
    if target["suspended_at"] is not None:
        raise deny("already-suspended", f"identity {target_id!r} is already suspended")
    out.put("identities", {**target, "suspended_at": index, "suspended_reason": reason})


def register_patient(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"pseudonym", "identity", "record_public_key"})
    pseudonym = hex64_field(body, "pseudonym")
    identity = public_identity(body["identity"], "body.identity")
    record_key = b64_field(body, "record_public_key")
    if identity.role != "patient":
        raise deny("wrong-role", "register_patient carries an identity with the patient role")
    if identity.id != tx.signer:
        raise deny("wrong-signer", "register_patient is signed by the identity it registers")
    # Proof of possession: the enclosed key itself must have signed the transaction.
    tx.verify_signature(identity.verify_key.to_bytes())
    _check_not_reserved(identity.id)
    existing = state.get("identities", identity.id)
    if existing is None:
        _check_patient_id(identity.id, pseudonym)
    row = identity_row(identity, index)
    if existing is not None:
        if existing["role"] != "patient" or existing["signing_key"] != row["signing_key"]:
            raise deny(
                "duplicate-identity",
                f"identity {identity.id!r} is already enrolled with other keys or role",
            )
        if existing["suspended_at"] is not None:
            raise deny("suspended", f"identity {identity.id!r} is suspended")
    if state.get("patients", pseudonym) is not None:
        raise deny("duplicate-pseudonym", f"pseudonym {pseudonym} is already registered")
    if existing is None:
        out.put("identities", row)
    out.put(
        "patients",
        {
            "pseudonym": pseudonym,
            "identity_id": identity.id,
            "record_public_key": record_key,
            "registered_at": index,
        },
    )


def reinstate(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    """Lift a suspension (admin, with a reason): the identity may log in and sign again."""
    body = tx.body
    check_fields(body, {"identity_id", "reason"})
    require_role(signer_row(state, tx), "admin")
    target_id = ident_field(body, "identity_id")
    text_field(body, "reason")
    target = known_identity(state, target_id, "identity")
    if target["suspended_at"] is None:
        raise deny(
            "not-suspended", f"identity {target_id!r} is not suspended; there is nothing to lift"
        )
    out.put("identities", {**target, "suspended_at": None, "suspended_reason": None})


def _verify_statement(statement: dict[str, str], key: str, signature: str, whose: str) -> None:
    try:
        VerifyKey(b64decode(key, length=32, what=whose)).verify(
            statement, b64decode(signature, length=64, what=f"{whose} signature")
        )
    except InvalidSignature as exc:
        raise MalformedTransaction(
            f"the rotation statement's signature by {whose} does not verify",
            code="bad-signature",
        ) from exc
    except EnvelopeError as exc:
        raise MalformedTransaction(f"{whose}: {exc}") from exc


def rotate_keys(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    """Replace an identity's keys: requested with its old and new key, submitted by an admin.

    The old keys are kept in `retired_keys` with the entries they were valid for, so the
    entries they signed still verify; from this entry on only the new signing key signs.
    """
    body = tx.body
    check_fields(body, {*ROTATION_FIELDS, "identity_signature", "new_key_signature"})
    require_role(signer_row(state, tx), "admin")
    target_id = ident_field(body, "identity_id")
    target = known_identity(state, target_id, "identity")
    if target_id == tx.signer:
        raise deny(
            "self-countersign",
            "an admin cannot countersign its own key rotation; ask another admin",
        )
    if target["role"] == "ledger":
        raise deny("wrong-role", "the ledger's own key is not rotated by a transaction")
    previous = b64_field(body, "previous_signing_public_key")
    if previous != target["signing_key"]:
        raise deny(
            "stale-rotation",
            f"the request replaces a signing key that is not {target_id!r}'s current one "
            "(its keys were rotated since, or the request is for another identity)",
        )
    new = public_identity(
        {
            "id": target_id,
            "role": target["role"],
            "signing_public_key": body["signing_public_key"],
            "encryption_public_key": body["encryption_public_key"],
        },
        "the new keys",
    )
    new_keys = new.to_json()
    if new_keys["signing_public_key"] == previous:
        raise deny("same-key", "the new signing key is the current one; make new keys")
    statement = rotation_statement(
        target_id, previous, new_keys["signing_public_key"], new_keys["encryption_public_key"]
    )
    _verify_statement(statement, previous, text_field(body, "identity_signature"), "the old key")
    _verify_statement(
        statement,
        new_keys["signing_public_key"],
        text_field(body, "new_key_signature"),
        "the new key",
    )
    valid_from = target["enrolled_at"] if target["keys_since"] is None else target["keys_since"]
    out.put(
        "retired_keys",
        {
            "identity_id": target_id,
            "valid_from": valid_from,
            "valid_until": index,
            "signing_key": target["signing_key"],
            "encryption_key": target["encryption_key"],
        },
    )
    out.put(
        "identities",
        {
            **target,
            "signing_key": new_keys["signing_public_key"],
            "encryption_key": new_keys["encryption_public_key"],
            "keys_since": index,
        },
    )
