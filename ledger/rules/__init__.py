"""The ledger's rules ("chaincode"): pure functions from (state, transaction, now) to the
changes the transaction makes, or a RuleViolation saying what to do instead.

`apply(state, tx, now, index)` reads the state through `StateView` and never writes it; the
caller evolves an overlay with the returned `Changes`. *now* is the commit time of the
block (a ledger time string) and *index* the log position the entry will take, so a replay
of the log reproduces the same state.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from envelope import EnvelopeError, PublicIdentity, b64decode
from ledger.clock import check_time, format_time, parse_time
from ledger.errors import MalformedTransaction, RuleViolation
from ledger.state import RIGHTS, Changes, Row, StateView
from ledger.transactions import Transaction

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far a transaction's issued_at may be ahead of the ledger's clock."""

ACCESS_ACTIONS = (
    "list",
    "record",
    "capsule",
    "body",
    "key_share",
    "access_history",
    "access_requests",
    "permissions",
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")


def _deny(code: str, message: str) -> RuleViolation:
    return RuleViolation(code, message)


# --- field checks: each returns the value or raises MalformedTransaction -----------------


def _str(body: dict[str, Any], name: str, *, max_len: int = 1000) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise MalformedTransaction(f"body.{name} must be a non-empty string of ≤ {max_len} chars")
    return value


def _ident(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise MalformedTransaction(
            f"body.{name} must be an identifier of letters, digits and ._:@- "
            f"(≤ 200 characters), got {value!r}"
        )
    return value


def _hex64(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise MalformedTransaction(f"body.{name} must be 64 lowercase hex characters")
    return value


def _time(body: dict[str, Any], name: str) -> str:
    return check_time(body.get(name), f"body.{name}")


def _b64(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    try:
        if not isinstance(value, str) or not b64decode(value, what=f"body.{name}"):
            raise MalformedTransaction(f"body.{name} must be non-empty base64")
    except EnvelopeError as exc:
        raise MalformedTransaction(str(exc)) from exc
    return value


def _rights(body: dict[str, Any], name: str = "rights") -> list[str]:
    value = body.get(name)
    if (
        not isinstance(value, list)
        or not value
        or any(r not in RIGHTS for r in value)
        or len(set(value)) != len(value)
        or value != sorted(value)
    ):
        raise MalformedTransaction(
            f"body.{name} must be a sorted, non-empty list without repeats drawn from "
            f"{', '.join(RIGHTS)}"
        )
    return value


def _categories(state: StateView, body: dict[str, Any]) -> list[str] | str:
    value = body.get("categories")
    if value == "all":
        return "all"
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(c, str) for c in value)
        or len(set(value)) != len(value)
        or value != sorted(value)
    ):
        raise MalformedTransaction(
            'body.categories must be "all" or a sorted, non-empty list of category names'
        )
    unknown = [c for c in value if c not in state.categories]
    if unknown:
        raise RuleViolation(
            "unknown-category",
            f"unknown categories {', '.join(unknown)}; known: "
            f"{', '.join(state.categories.names())}",
        )
    return value


_ALWAYS = frozenset({"tx_id", "issued_at"})


def _fields(
    body: dict[str, Any], required: set[str], optional: frozenset[str] = frozenset()
) -> None:
    keys = body.keys()
    allowed = required | optional | _ALWAYS
    if keys >= required and keys <= allowed:
        return
    missing = required - body.keys()
    if missing:
        raise MalformedTransaction(f"body lacks {', '.join(sorted(missing))}")
    extra = body.keys() - allowed
    if extra:
        raise MalformedTransaction(f"body has unknown fields {', '.join(sorted(extra))}")


def _join(values: list[str] | str) -> str:
    return values if isinstance(values, str) else ",".join(values)


# --- signer resolution -------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def signing_key_bytes(text: str) -> bytes:
    """The raw key of an identity row's base64 signing_key (cached: a key signs many)."""
    return b64decode(text)


def _signer(state: StateView, tx: Transaction) -> Row:
    """The signer's identity row, after checking it exists, is active and signed tx."""
    row = state.get("identities", tx.signer)
    if row is None:
        raise _deny("unknown-signer", f"signer {tx.signer!r} is not enrolled on this ledger")
    if row["suspended_at"] is not None:
        raise _deny(
            "suspended", f"identity {tx.signer!r} is suspended and can do nothing on the ledger"
        )
    tx.verify_signature(signing_key_bytes(row["signing_key"]))
    return row


def _require_role(row: Row, *roles: str) -> None:
    if row["role"] not in roles:
        raise _deny(
            "wrong-role",
            f"a {row['role']} may not sign this transaction; it needs the role "
            f"{' or '.join(roles)}",
        )


def _owned_patient(state: StateView, tx: Transaction, pseudonym: str) -> Row:
    patient = state.get("patients", pseudonym)
    if patient is None:
        raise _deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    if patient["identity_id"] != tx.signer:
        raise _deny(
            "not-owner",
            f"only the patient who registered pseudonym {pseudonym} may do this; "
            f"{tx.signer!r} is not that patient",
        )
    return patient


def _known_identity(state: StateView, identity_id: str, what: str) -> Row:
    row = state.get("identities", identity_id)
    if row is None:
        raise _deny("unknown-identity", f"{what} {identity_id!r} is not enrolled on this ledger")
    return row


def _public_identity(value: Any, what: str) -> PublicIdentity:
    try:
        identity = PublicIdentity.from_json(value)
    except EnvelopeError as exc:
        raise MalformedTransaction(f"{what}: {exc}") from exc
    if not _ID.fullmatch(identity.id):
        raise MalformedTransaction(
            f"{what}: id must be letters, digits and ._:@- (≤ 200 characters)"
        )
    return identity


def _identity_row(identity: PublicIdentity, index: int) -> Row:
    data = identity.to_json()
    return {
        "id": identity.id,
        "role": identity.role,
        "signing_key": data["signing_public_key"],
        "encryption_key": data["encryption_public_key"],
        "enrolled_at": index,
        "suspended_at": None,
        "suspended_reason": None,
    }


# --- one rule per transaction type ------------------------------------------------------

Rule = Callable[[StateView, Transaction, str, int, Changes], None]


def _genesis(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"ledger", "admin"})
    if not state.is_empty() or index != 0:
        raise _deny("genesis-exists", "this ledger already has a genesis entry")
    ledger = body["ledger"]
    if not isinstance(ledger, dict) or set(ledger) != {"id", "signing_public_key"}:
        raise MalformedTransaction("body.ledger must be {id, signing_public_key}")
    ledger_id = _ident(ledger, "id")
    key = ledger["signing_public_key"]
    if not isinstance(key, str):
        raise MalformedTransaction("body.ledger.signing_public_key must be base64")
    try:
        raw_key = b64decode(key, length=32, what="body.ledger.signing_public_key")
    except EnvelopeError as exc:
        raise MalformedTransaction(str(exc)) from exc
    if tx.signer != ledger_id:
        raise _deny("wrong-signer", "the genesis entry is signed by the ledger key it names")
    tx.verify_signature(raw_key)
    admin = _public_identity(body["admin"], "body.admin")
    if admin.role != "admin":
        raise _deny("wrong-role", "the genesis entry names an identity with the admin role")
    if admin.id == ledger_id:
        raise _deny("duplicate-identity", "the first admin needs an id other than the ledger's")
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
        },
    )
    out.put("identities", _identity_row(admin, index))


def _enroll(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    _fields(tx.body, {"identity"})
    _require_role(_signer(state, tx), "admin")
    identity = _public_identity(tx.body["identity"], "body.identity")
    if identity.role == "patient":
        raise _deny("wrong-role", "patients are not enrolled: they register with register_patient")
    if state.get("identities", identity.id) is not None:
        raise _deny("duplicate-identity", f"identity {identity.id!r} is already enrolled")
    out.put("identities", _identity_row(identity, index))


def _suspend(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"identity_id", "reason"})
    _require_role(_signer(state, tx), "admin")
    target_id = _ident(body, "identity_id")
    reason = _str(body, "reason")
    target = _known_identity(state, target_id, "identity")
    if target_id == tx.signer:
        raise _deny("self-suspend", "an admin cannot suspend itself; ask another admin")
    if target["role"] == "ledger":
        raise _deny("wrong-role", "the ledger's own identity cannot be suspended")
    if target["suspended_at"] is not None:
        raise _deny("already-suspended", f"identity {target_id!r} is already suspended")
    out.put("identities", {**target, "suspended_at": index, "suspended_reason": reason})


def _register_patient(
    state: StateView, tx: Transaction, now: str, index: int, out: Changes
) -> None:
    body = tx.body
    _fields(body, {"pseudonym", "identity", "record_public_key"})
    pseudonym = _hex64(body, "pseudonym")
    identity = _public_identity(body["identity"], "body.identity")
    record_key = _b64(body, "record_public_key")
    if identity.role != "patient":
        raise _deny("wrong-role", "register_patient carries an identity with the patient role")
    if identity.id != tx.signer:
        raise _deny("wrong-signer", "register_patient is signed by the identity it registers")
    # Proof of possession: the enclosed key itself must have signed the transaction.
    tx.verify_signature(identity.verify_key.to_bytes())
    existing = state.get("identities", identity.id)
    row = _identity_row(identity, index)
    if existing is not None:
        if existing["role"] != "patient" or existing["signing_key"] != row["signing_key"]:
            raise _deny(
                "duplicate-identity",
                f"identity {identity.id!r} is already enrolled with other keys or role",
            )
        if existing["suspended_at"] is not None:
            raise _deny("suspended", f"identity {identity.id!r} is suspended")
    if state.get("patients", pseudonym) is not None:
        raise _deny("duplicate-pseudonym", f"pseudonym {pseudonym} is already registered")
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


def _grant(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(
        body,
        {"permission_id", "pseudonym", "grantee", "rights", "categories", "not_before",
         "not_after"},
        frozenset({"study_id", "anonymise"}),
    )  # fmt: skip
    _signer(state, tx)
    pseudonym = _hex64(body, "pseudonym")
    permission_id = _ident(body, "permission_id")
    grantee = _ident(body, "grantee")
    rights = _rights(body)
    categories = _categories(state, body)
    not_before, not_after = _time(body, "not_before"), _time(body, "not_after")
    patient = _owned_patient(state, tx, pseudonym)
    if not_before >= not_after:
        raise _deny("empty-interval", "not_before must be earlier than not_after")
    study_id, anonymise = body.get("study_id"), body.get("anonymise")
    if "share" in rights:
        if study_id is None or anonymise is None:
            raise _deny(
                "share-needs-study", "a share right needs study_id and anonymise (true/false)"
            )
        _ident(body, "study_id")
        if not isinstance(anonymise, bool):
            raise MalformedTransaction("body.anonymise must be true or false")
    elif study_id is not None or anonymise is not None:
        raise _deny("study-without-share", "study_id and anonymise belong to a share right only")
    if grantee == patient["identity_id"]:
        raise _deny("self-grant", "a patient always has every right on its own records")
    _known_identity(state, grantee, "grantee")
    if state.get("permissions", permission_id) is not None:
        raise _deny("duplicate-permission", f"permission {permission_id} already exists")
    out.put(
        "permissions",
        {
            "permission_id": permission_id,
            "pseudonym": pseudonym,
            "grantee": grantee,
            "rights": _join(rights),
            "categories": _join(categories),
            "not_before": not_before,
            "not_after": not_after,
            "study_id": study_id,
            "anonymise": anonymise,
            "granted_at": index,
            "revoked_at": None,
        },
    )


def _revoke(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"pseudonym", "permission_id"})
    _signer(state, tx)
    pseudonym = _hex64(body, "pseudonym")
    permission_id = _ident(body, "permission_id")
    _owned_patient(state, tx, pseudonym)
    permission = state.get("permissions", permission_id)
    if permission is None or permission["pseudonym"] != pseudonym:
        raise _deny(
            "unknown-permission", f"permission {permission_id} does not exist on {pseudonym}"
        )
    if permission["revoked_at"] is not None:
        raise _deny("already-revoked", f"permission {permission_id} is already revoked")
    out.put("permissions", {**permission, "revoked_at": index})


def _key_share(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"pseudonym", "grantee", "sealed_key"})
    _signer(state, tx)
    pseudonym = _hex64(body, "pseudonym")
    grantee = _ident(body, "grantee")
    sealed_key = _b64(body, "sealed_key")
    _owned_patient(state, tx, pseudonym)
    _known_identity(state, grantee, "grantee")
    out.put(
        "key_shares",
        {"pseudonym": pseudonym, "grantee": grantee, "sealed_key": sealed_key,
         "entry_index": index},
    )  # fmt: skip


def _record(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(
        body,
        {"record_id", "pseudonym", "category", "body_sha256", "size", "locators",
         "capsule_sha256", "content_type", "created_at"},
        frozenset({"on_behalf_of"}),
    )  # fmt: skip
    signer = _signer(state, tx)
    record_id = _ident(body, "record_id")
    pseudonym = _hex64(body, "pseudonym")
    category = _str(body, "category", max_len=63)
    body_sha256 = _hex64(body, "body_sha256")
    capsule_sha256 = _hex64(body, "capsule_sha256")
    content_type = _str(body, "content_type", max_len=200)
    created_at = _time(body, "created_at")
    size = body["size"]
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size < 2**53:
        raise MalformedTransaction("body.size must be a non-negative integer")
    locators = body["locators"]
    if (
        not isinstance(locators, list)
        or not locators
        or not all(isinstance(x, str) and 0 < len(x) <= 2000 for x in locators)
    ):
        raise MalformedTransaction("body.locators must be a non-empty list of strings")
    if category not in state.categories:
        raise _deny(
            "unknown-category",
            f"unknown category {category!r}; known: {', '.join(state.categories.names())}",
        )
    patient = state.get("patients", pseudonym)
    if patient is None:
        raise _deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    if state.get("records", record_id) is not None:
        raise _deny("duplicate-record", f"record {record_id} already exists")
    on_behalf_of = body.get("on_behalf_of")
    writer = tx.signer
    if on_behalf_of is not None:
        _ident(body, "on_behalf_of")
        _require_role(signer, "ledger")
        system = _known_identity(state, on_behalf_of, "on_behalf_of")
        if system["suspended_at"] is not None:
            raise _deny("suspended", f"identity {on_behalf_of!r} is suspended")
        writer = on_behalf_of
    if writer != patient["identity_id"]:
        decision = state.check(writer, "write", pseudonym, category, now)
        if not decision.allowed:
            raise _deny(
                "not-granted",
                f"{writer!r} may not write {category} records of {pseudonym}: "
                f"{decision.reason}; the patient must grant a write right valid now",
            )
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
        },
    )


def _access(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(
        body,
        {"actor", "action", "pseudonym", "decision", "reason", "at"},
        frozenset({"record_id", "category"}),
    )
    _require_role(_signer(state, tx), "ledger")
    actor = _ident(body, "actor")
    action = body["action"]
    if action not in ACCESS_ACTIONS:
        raise MalformedTransaction(f"body.action must be one of {', '.join(ACCESS_ACTIONS)}")
    pseudonym = _hex64(body, "pseudonym")
    decision = body["decision"]
    if decision not in ("allowed", "denied"):
        raise MalformedTransaction('body.decision must be "allowed" or "denied"')
    reason = _str(body, "reason")
    at = _time(body, "at")
    record_id = body.get("record_id")
    category = body.get("category")
    if record_id is not None:
        _ident(body, "record_id")
    if category is not None:
        _str(body, "category", max_len=63)
    _known_identity(state, actor, "actor")
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


def _access_request(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"pseudonym", "rights", "categories", "reason"})
    _require_role(_signer(state, tx), "clinician", "system", "auditor")
    pseudonym = _hex64(body, "pseudonym")
    rights = _rights(body)
    categories = _categories(state, body)
    reason = _str(body, "reason")
    if state.get("patients", pseudonym) is None:
        raise _deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    out.put(
        "access_requests",
        {
            "request_id": tx.tx_id,
            "requester": tx.signer,
            "pseudonym": pseudonym,
            "rights": _join(rights),
            "categories": _join(categories),
            "reason": reason,
            "entry_index": index,
        },
    )


def _rekey(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    _fields(body, {"record_id", "capsule_sha256"})
    _signer(state, tx)
    record_id = _ident(body, "record_id")
    capsule_sha256 = _hex64(body, "capsule_sha256")
    record = state.get("records", record_id)
    if record is None:
        raise _deny("unknown-record", f"record {record_id} does not exist")
    _owned_patient(state, tx, record["pseudonym"])
    out.put("records", {**record, "capsule_sha256": capsule_sha256, "rekeyed_at": index})


@functools.lru_cache(maxsize=64)
def _latest_acceptable(now: str, skew: timedelta) -> str:
    return format_time(parse_time(now, "now") + skew)


RULES: dict[str, Rule] = {
    "genesis": _genesis,
    "enroll": _enroll,
    "suspend": _suspend,
    "register_patient": _register_patient,
    "grant": _grant,
    "revoke": _revoke,
    "key_share": _key_share,
    "record": _record,
    "access": _access,
    "access_request": _access_request,
    "rekey": _rekey,
}


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
        raise _deny(
            "from-the-future",
            f"issued_at {tx.body['issued_at']} is ahead of the ledger clock ({now}) by more "
            f"than {max_clock_skew}; check the signer's clock",
        )
    if state.tx_id_used(tx.tx_id):
        raise _deny("replayed", f"transaction {tx.tx_id} was already committed")
    if tx.type != "genesis" and state.is_empty():
        raise _deny("no-genesis", "the ledger has no genesis entry yet")
    changes = Changes(tx.tx_id)
    RULES[tx.type](state, tx, now, index, changes)
    return changes
