"""What the SDK returns: small frozen dataclasses read from the gateway's JSON answers.

Each has `from_json` (which raises `MalformedAnswer` on anything unexpected) and
`to_json` (the form the command line prints with --json).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ehrgate.errors import Unavailable

T = TypeVar("T")


class MalformedAnswer(Unavailable):
    """The gateway answered with JSON that is not what its API promises."""


def _get(data: Any, name: str, kind: type[T], where: str) -> T:
    if not isinstance(data, dict) or name not in data:
        raise MalformedAnswer(f"the gateway's {where} has no {name!r}")
    value = data[name]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedAnswer(f"the gateway's {where} has a malformed {name!r}")
    return value


def _optional(data: Any, name: str, kind: type[T], where: str) -> T | None:
    if isinstance(data, dict) and data.get(name) is None:
        return None
    return _get(data, name, kind, where)


def _strings(data: Any, name: str, where: str) -> tuple[str, ...]:
    values = _get(data, name, list, where)
    if not all(isinstance(value, str) for value in values):
        raise MalformedAnswer(f"the gateway's {where} has a malformed {name!r}")
    return tuple(values)


def _categories(data: Any, where: str) -> tuple[str, ...] | str:
    if isinstance(data, dict) and data.get("categories") == "all":
        return "all"
    return _strings(data, "categories", where)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples and paths as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_jsonable(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.repr
        }
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


class _Jsonable:
    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = to_jsonable(self)
        return result


@dataclass(frozen=True, slots=True)
class TreeHead(_Jsonable):
    """A signed tree head: the ledger's block at `height`, covering `tree_size` entries."""

    height: int
    previous_hash: str
    tree_size: int
    root: str
    timestamp: str
    signature: str

    @classmethod
    def from_json(cls, data: Any) -> TreeHead:
        where = "tree head"
        return cls(
            _get(data, "height", int, where),
            _get(data, "previous_hash", str, where),
            _get(data, "tree_size", int, where),
            _get(data, "root", str, where),
            _get(data, "timestamp", str, where),
            _get(data, "signature", str, where),
        )


@dataclass(frozen=True, slots=True)
class Receipt(_Jsonable):
    """Where a transaction is on the log: its index, leaf hash, and proof under a head."""

    index: int
    tx_hash: str
    tree_head: TreeHead
    inclusion_proof: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> Receipt:
        where = "receipt"
        return cls(
            _get(data, "index", int, where),
            _get(data, "tx_hash", str, where),
            TreeHead.from_json(_get(data, "tree_head", dict, where)),
            _strings(data, "inclusion_proof", where),
        )


@dataclass(frozen=True, slots=True)
class Identity(_Jsonable):
    """An enrolled identity's role and public keys."""

    id: str
    role: str
    signing_public_key: str
    encryption_public_key: str
    suspended: bool

    @classmethod
    def from_json(cls, data: Any) -> Identity:
        where = "identity"
        return cls(
            _get(data, "id", str, where),
            _get(data, "role", str, where),
            _get(data, "signing_public_key", str, where),
            _get(data, "encryption_public_key", str, where),
            bool(_optional(data, "suspended", bool, where)),
        )


@dataclass(frozen=True, slots=True)
class Patient(_Jsonable):
    """A registered patient: pseudonym, its identity and the record public key."""

    pseudonym: str
    identity_id: str
    record_public_key: str

    @classmethod
    def from_json(cls, data: Any) -> Patient:
        where = "patient"
        return cls(
            _get(data, "pseudonym", str, where),
            _get(data, "identity_id", str, where),
            _get(data, "record_public_key", str, where),
        )


@dataclass(frozen=True, slots=True)
class Permission(_Jsonable):
    """A time-bounded permission a patient granted."""

    permission_id: str
    pseudonym: str
    grantee: str
    rights: tuple[str, ...]
    categories: tuple[str, ...] | str
    not_before: str
    not_after: str
    study_id: str | None
    anonymise: bool | None
    revoked: bool

    @classmethod
    def from_json(cls, data: Any) -> Permission:
        where = "permission"
        return cls(
            _get(data, "permission_id", str, where),
            _get(data, "pseudonym", str, where),
            _get(data, "grantee", str, where),
            _strings(data, "rights", where),
            _categories(data, where),
            _get(data, "not_before", str, where),
            _get(data, "not_after", str, where),
            _optional(data, "study_id", str, where),
            _optional(data, "anonymise", bool, where),
            _get(data, "revoked", bool, where),
        )


@dataclass(frozen=True, slots=True)
class Record(_Jsonable):
    """A record's ledger metadata (the body and capsule themselves are fetched apart)."""

    record_id: str
    pseudonym: str
    category: str
    body_sha256: str
    size: int
    locators: tuple[str, ...]
    capsule_sha256: str
    content_type: str
    created_at: str
    uploader: str
    on_behalf_of: str | None
    entry_index: int

    @property
    def writer(self) -> str:
        """Who wrote it: the system a gateway sealed for, or the uploader itself."""
        return self.on_behalf_of or self.uploader

    @classmethod
    def from_json(cls, data: Any) -> Record:
        where = "record"
        return cls(
            _get(data, "record_id", str, where),
            _get(data, "pseudonym", str, where),
            _get(data, "category", str, where),
            _get(data, "body_sha256", str, where),
            _get(data, "size", int, where),
            _strings(data, "locators", where),
            _get(data, "capsule_sha256", str, where),
            _get(data, "content_type", str, where),
            _get(data, "created_at", str, where),
            _get(data, "uploader", str, where),
            _optional(data, "on_behalf_of", str, where),
            _get(data, "entry_index", int, where),
        )


@dataclass(frozen=True, slots=True)
class Uploaded(_Jsonable):
    """A committed upload: the record and its verified receipt."""

    record: Record
    receipt: Receipt
    filename: str
    plaintext_sha256: str
    plaintext_size: int


@dataclass(frozen=True, slots=True)
class Fetched(_Jsonable):
    """A record fetched, verified end to end and decrypted to `path`."""

    record: Record
    receipt: Receipt
    path: Path
    filename: str
    content_type: str
    plaintext_sha256: str
    plaintext_size: int
    signer_id: str


@dataclass(frozen=True, slots=True)
class AccessEvent(_Jsonable):
    """One audited access: who did what to which record, when, allowed or denied, why."""

    entry_index: int
    actor: str
    action: str
    record_id: str | None
    category: str | None
    decision: str
    reason: str
    at: str

    @classmethod
    def from_json(cls, data: Any) -> AccessEvent:
        where = "access event"
        return cls(
            _get(data, "entry_index", int, where),
            _get(data, "actor", str, where),
            _get(data, "action", str, where),
            _optional(data, "record_id", str, where),
            _optional(data, "category", str, where),
            _get(data, "decision", str, where),
            _get(data, "reason", str, where),
            _get(data, "at", str, where),
        )


@dataclass(frozen=True, slots=True)
class AccessRequest(_Jsonable):
    """A clinician's or system's request to a patient for rights."""

    request_id: str
    requester: str
    pseudonym: str
    rights: tuple[str, ...]
    categories: tuple[str, ...] | str
    reason: str

    @classmethod
    def from_json(cls, data: Any) -> AccessRequest:
        where = "access request"
        return cls(
            _get(data, "request_id", str, where),
            _get(data, "requester", str, where),
            _get(data, "pseudonym", str, where),
            _strings(data, "rights", where),
            _categories(data, where),
            _get(data, "reason", str, where),
        )


@dataclass(frozen=True, slots=True)
class LedgerHead(_Jsonable):
    """The gateway's latest signed tree head (verified) and the key that signs heads."""

    tree_head: TreeHead | None
    ledger_public_key: str


@dataclass(frozen=True, slots=True)
class RecordProof(_Jsonable):
    """A record with its inclusion proof, checked against a tree head the ledger signed."""

    record: Record
    receipt: Receipt
    ledger_public_key: str
