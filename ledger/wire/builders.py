"""Helpers that build and sign each kind of ledger transaction.

Each takes the acting identity (anything with an ``id`` and an Ed25519 ``signing_key``,
such as `envelope.IdentityKeys` or `LedgerSigner`), fills in a fresh random ``tx_id`` and
``issued_at`` (now, unless given) and returns a signed `Transaction`. They check nothing
about the ledger's state: the rules do that when the transaction is submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from envelope import PublicIdentity, SigningKey, b64encode
from ledger.wire.clock import coerce_time
from ledger.wire.encoding import canonical
from ledger.wire.ids import LEDGER_ID, new_id
from ledger.wire.rotation import RotationRequest
from ledger.wire.scoped import scope_items
from ledger.wire.transactions import Transaction


class Actor(Protocol):
    """Who signs: an identity id and its Ed25519 key."""

    @property
    def id(self) -> str: ...

    @property
    def signing_key(self) -> SigningKey: ...


@dataclass(frozen=True, slots=True)
class LedgerSigner:
    """The ledger's (gateway's) own identity: signs blocks, `access` and on-behalf records.

    A transaction this signer makes is marked as verified with its public key: the process
    holding the private key has just produced the signature, so the ledger need not check
    it again on append. Only the Transaction object `sign` returns carries the mark; the
    same transaction parsed from JSON (or built by hand) is verified like any other, and
    offline verification checks every signature regardless.
    """

    signing_key: SigningKey
    id: str = LEDGER_ID
    public_key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", self.signing_key.verify_key.to_bytes())


TimeLike = datetime | str | None


def sign(
    actor: Actor,
    tx_type: str,
    fields: dict[str, Any],
    *,
    issued_at: TimeLike = None,
    tx_id: str | None = None,
) -> Transaction:
    """Sign a transaction of *tx_type* whose body is *fields* plus tx_id and issued_at."""
    body = dict(fields)
    body["tx_id"] = tx_id or new_id()
    body["issued_at"] = coerce_time(issued_at)
    payload = {"type": tx_type, "body": body, "signer": actor.id}
    tx = Transaction(tx_type, body, actor.id, actor.signing_key.sign_bytes(canonical(payload)))
    if isinstance(actor, LedgerSigner):
        # Trusted only because this object never left the process that signed it.
        tx._mark_verified(actor.public_key)
    return tx


def genesis(ledger: Actor, admin: PublicIdentity, *, issued_at: TimeLike = None) -> Transaction:
    """The first entry: names the ledger key and the first administrator."""
    return sign(
        ledger,
        "genesis",
        {
            "ledger": {
                "id": ledger.id,
                "signing_public_key": b64encode(ledger.signing_key.verify_key.to_bytes()),
            },
            "admin": admin.to_json(),
        },
        issued_at=issued_at,
    )


def enroll(admin: Actor, identity: PublicIdentity, *, issued_at: TimeLike = None) -> Transaction:
    return sign(admin, "enroll", {"identity": identity.to_json()}, issued_at=issued_at)


def suspend(
    admin: Actor, identity_id: str, reason: str, *, issued_at: TimeLike = None
) -> Transaction:
    return sign(
        admin, "suspend", {"identity_id": identity_id, "reason": reason}, issued_at=issued_at
    )


def reinstate(
    admin: Actor, identity_id: str, reason: str, *, issued_at: TimeLike = None
) -> Transaction:
    """Lift the suspension of *identity_id* (admin)."""
    return sign(
        admin, "reinstate", {"identity_id": identity_id, "reason": reason}, issued_at=issued_at
    )


def rotate_keys(
    admin: Actor, request: RotationRequest, *, issued_at: TimeLike = None
) -> Transaction:
    """Replace an identity's keys as its signed *request* asks (admin countersigns)."""
    return sign(admin, "rotate_keys", request.body(), issued_at=issued_at)


class PatientActor(Actor, Protocol):
    def public(self) -> PublicIdentity: ...


def register_patient(
    patient: PatientActor,
    pseudonym: str,
    record_public_key: bytes,
    *,
    issued_at: TimeLike = None,
) -> Transaction:
    """Self-registration; the signature by the enclosed identity key proves possession."""
    return sign(
        patient,
        "register_patient",
        {
            "pseudonym": pseudonym,
            "identity": patient.public().to_json(),
            "record_public_key": b64encode(record_public_key),
        },
        issued_at=issued_at,
    )


def _categories(categories: Iterable[str] | str) -> list[str] | str:
    return "all" if categories == "all" else sorted(categories)


def grant(
    patient: Actor,
    *,
    pseudonym: str,
    grantee: str,
    rights: Iterable[str],
    categories: Iterable[str] | str,
    not_before: datetime | str,
    not_after: datetime | str,
    study_id: str | None = None,
    anonymise: bool | None = None,
    study_pseudonym: str | None = None,
    study_secret: bytes | None = None,
    permission_id: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """A time-bounded permission: valid from *not_before* (inclusive) to *not_after*
    (exclusive). A share right needs *study_id* and *anonymise*; to be used for an export it
    also names the patient's *study_pseudonym* and carries the *study_secret* sealed to the
    grantee (`envelope.seal_study_secret`)."""
    fields: dict[str, Any] = {
        "permission_id": permission_id or new_id(),
        "pseudonym": pseudonym,
        "grantee": grantee,
        "rights": sorted(rights),
        "categories": _categories(categories),
        "not_before": coerce_time(not_before),
        "not_after": coerce_time(not_after),
    }
    if study_id is not None:
        fields["study_id"] = study_id
    if anonymise is not None:
        fields["anonymise"] = anonymise
    if study_pseudonym is not None:
        fields["study_pseudonym"] = study_pseudonym
    if study_secret is not None:
        fields["study_secret"] = b64encode(study_secret)
    return sign(patient, "grant", fields, issued_at=issued_at)


def revoke(
    patient: Actor, *, pseudonym: str, permission_id: str, issued_at: TimeLike = None
) -> Transaction:
    return sign(
        patient,
        "revoke",
        {"pseudonym": pseudonym, "permission_id": permission_id},
        issued_at=issued_at,
    )


def key_share(
    patient: Actor,
    *,
    pseudonym: str,
    grantee: str,
    sealed_key: bytes,
    scope: Iterable[tuple[str, str]] | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """Deposit a key share for *grantee* (opaque here; made by envelope): with *scope*, the
    (category, month) pairs whose seeds a scoped share carries; without, K (version 1)."""
    fields: dict[str, Any] = {
        "pseudonym": pseudonym,
        "grantee": grantee,
        "sealed_key": b64encode(sealed_key),
    }
    if scope is not None:
        fields["scope"] = scope_items(scope)
    return sign(patient, "key_share", fields, issued_at=issued_at)


def publish_keys(
    patient: Actor,
    *,
    pseudonym: str,
    keys: Iterable[tuple[str, str, bytes]],
    generation: int | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """Publish the public halves of (category, month) record keys: (category, "YYYY-MM",
    raw public key) each; sorted here. *generation*: of the patient's K they derive from
    (absent: 1; the next one after a rotation replaces older generations' keys)."""
    entries = [
        {"category": category, "period": period, "public_key": b64encode(public_key)}
        for category, period, public_key in sorted(keys, key=lambda item: item[:2])
    ]
    body: dict[str, Any] = {"pseudonym": pseudonym, "keys": entries}
    if generation is not None:
        body["generation"] = generation
    return sign(patient, "publish_keys", body, issued_at=issued_at)


def record(
    uploader: Actor,
    *,
    pseudonym: str,
    category: str,
    body_sha256: str,
    size: int,
    locators: Sequence[str],
    capsule_sha256: str,
    content_type: str,
    created_at: datetime | str | None = None,
    record_id: str | None = None,
    on_behalf_of: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """A stored document. *on_behalf_of* is set when the ledger signs for a system that
    could only send plaintext; the system's write right is then checked."""
    fields: dict[str, Any] = {
        "record_id": record_id or new_id(),
        "pseudonym": pseudonym,
        "category": category,
        "body_sha256": body_sha256,
        "size": size,
        "locators": list(locators),
        "capsule_sha256": capsule_sha256,
        "content_type": content_type,
        "created_at": coerce_time(created_at),
    }
    if on_behalf_of is not None:
        fields["on_behalf_of"] = on_behalf_of
    return sign(uploader, "record", fields, issued_at=issued_at)


def access(
    gateway: Actor,
    *,
    actor: str,
    action: str,
    pseudonym: str | None,
    decision: str,
    reason: str,
    at: datetime | str | None = None,
    record_id: str | None = None,
    category: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """The gateway's account of one access attempt, allowed or denied. A refused write or
    login may name no patient (*pseudonym* None): the member is then left out."""
    fields: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "decision": decision,
        "reason": reason,
        "at": coerce_time(at),
    }
    if pseudonym is not None:
        fields["pseudonym"] = pseudonym
    if record_id is not None:
        fields["record_id"] = record_id
    if category is not None:
        fields["category"] = category
    return sign(gateway, "access", fields, issued_at=issued_at)


def access_request(
    requester: Actor,
    *,
    pseudonym: str,
    rights: Iterable[str],
    categories: Iterable[str] | str,
    reason: str,
    not_before: datetime | str | None = None,
    not_after: datetime | str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """A clinician asks a patient for a permission, for the period *not_before* to
    *not_after* if it names one (both or neither)."""
    fields: dict[str, Any] = {
        "pseudonym": pseudonym,
        "rights": sorted(rights),
        "categories": _categories(categories),
        "reason": reason,
    }
    if not_before is not None:
        fields["not_before"] = coerce_time(not_before)
    if not_after is not None:
        fields["not_after"] = coerce_time(not_after)
    return sign(requester, "access_request", fields, issued_at=issued_at)


def answer_request(
    patient: Actor,
    *,
    pseudonym: str,
    request_id: str,
    decision: str,
    permission_id: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """The patient's answer to an access request: "approved" names the permission the
    patient granted for it (committed before), "declined" names none."""
    fields: dict[str, Any] = {
        "pseudonym": pseudonym,
        "request_id": request_id,
        "decision": decision,
    }
    if permission_id is not None:
        fields["permission_id"] = permission_id
    return sign(patient, "answer_request", fields, issued_at=issued_at)


def rekey(
    patient: Actor,
    *,
    record_id: str,
    capsule_sha256: str,
    generation: int | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """Point a record at a re-wrapped capsule (the body is unchanged); *generation*: of the
    patient's K the new capsule is sealed to (the current one, or refused)."""
    body: dict[str, Any] = {"record_id": record_id, "capsule_sha256": capsule_sha256}
    if generation is not None:
        body["generation"] = generation
    return sign(patient, "rekey", body, issued_at=issued_at)


def erase(
    actor: Actor,
    *,
    pseudonym: str,
    record_id: str | None = None,
    reason: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """Erase one record (*record_id*) or, without it, every record of *pseudonym*.

    Signed by the patient, or by an admin with the legal *reason* (which the rules require
    of an admin; it is kept on the log, so it must name no person)."""
    fields: dict[str, Any] = {
        "pseudonym": pseudonym,
        "scope": "patient" if record_id is None else "record",
    }
    if record_id is not None:
        fields["record_id"] = record_id
    if reason is not None:
        fields["reason"] = reason
    return sign(actor, "erase", fields, issued_at=issued_at)


def break_glass_policy(
    patient: Actor,
    *,
    pseudonym: str,
    emergency_identity: str,
    categories: Iterable[str] | str,
    roles: Iterable[str],
    max_minutes: int,
    not_before: datetime | str,
    not_after: datetime | str,
    issued_at: TimeLike = None,
) -> Transaction:
    """The patient's opt-in to break-glass access through a hospital's emergency identity:
    which categories, which roles may invoke it, for how long at most, while it holds."""
    return sign(
        patient,
        "break_glass_policy",
        {
            "pseudonym": pseudonym,
            "emergency_identity": emergency_identity,
            "categories": _categories(categories),
            "roles": sorted(roles),
            "max_minutes": max_minutes,
            "not_before": coerce_time(not_before),
            "not_after": coerce_time(not_after),
        },
        issued_at=issued_at,
    )


def break_glass(
    clinician: Actor,
    *,
    pseudonym: str,
    emergency_identity: str,
    reason: str,
    details: str,
    minutes: int,
    session_id: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """A clinician's emergency access to a patient who opted in: *reason* from the fixed
    list (`ledger.wire.emergency.REASONS`), *details* in words, lasting *minutes*."""
    return sign(
        clinician,
        "break_glass",
        {
            "session_id": session_id or new_id(),
            "pseudonym": pseudonym,
            "emergency_identity": emergency_identity,
            "reason": reason,
            "details": details,
            "minutes": minutes,
        },
        issued_at=issued_at,
    )


def break_glass_review(
    reviewer: Actor,
    *,
    session_id: str,
    verdict: str,
    note: str,
    issued_at: TimeLike = None,
) -> Transaction:
    """An auditor's (or admin's) review of a break-glass act: "accepted" or "flagged"."""
    return sign(
        reviewer,
        "break_glass_review",
        {"session_id": session_id, "verdict": verdict, "note": note},
        issued_at=issued_at,
    )


def study_export(
    exporter: Actor,
    *,
    permission_id: str,
    study_id: str,
    study_pseudonym: str,
    source_record_id: str,
    anonymise: bool,
    category: str,
    created_at: datetime | str,
    content_type: str,
    body_sha256: str,
    size: int,
    locators: Sequence[str],
    capsule_sha256: str,
    export_id: str | None = None,
    issued_at: TimeLike = None,
) -> Transaction:
    """One record exported to a study under a share right: its data key rewrapped for the
    study (same body), or with *anonymise* a new sealed copy (new body, shifted date)."""
    return sign(
        exporter,
        "study_export",
        {
            "export_id": export_id or new_id(),
            "permission_id": permission_id,
            "study_id": study_id,
            "study_pseudonym": study_pseudonym,
            "source_record_id": source_record_id,
            "anonymise": anonymise,
            "category": category,
            "created_at": coerce_time(created_at),
            "content_type": content_type,
            "body_sha256": body_sha256,
            "size": size,
            "locators": list(locators),
            "capsule_sha256": capsule_sha256,
        },
        issued_at=issued_at,
    )
