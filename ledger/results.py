"""What the ledger's state queries return: frozen, typed views of the state tables' rows.

The state keeps plain rows internally (the rules, the permission index and the state
digest work on them); a query turns the row it found into one of these. Rights and
categories are parsed (`("read", "write")`, `"all"` or a tuple of names), a record's
locators are a tuple, and times stay in the ledger's text form
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``), which is unique for an instant and sorts as text;
`ledger.wire.clock.parse_time` makes a datetime of one. Fields named ``*_at`` that hold an int
are the index of the log entry that made the change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

Categories = tuple[str, ...] | Literal["all"]
"""Category names, or "all" (every category, present and future)."""


def _names(joined: str) -> tuple[str, ...]:
    return tuple(joined.split(","))


def _categories(joined: str) -> Categories:
    return "all" if joined == "all" else _names(joined)


@dataclass(frozen=True, slots=True)
class Identity:
    """An enrolled identity (or the ledger's own, role "ledger", without encryption key)."""

    id: str
    role: str
    signing_key: str  # Ed25519 public key, base64
    encryption_key: str | None  # ML-KEM-768+X25519 public key, base64
    enrolled_at: int
    suspended_at: int | None
    suspended_reason: str | None
    keys_since: int | None = None  # the entry that rotated its keys to these (None: enrolled)

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def keys_valid_from(self) -> int:
        """The first entry index at which the current keys are the identity's keys."""
        return self.enrolled_at if self.keys_since is None else self.keys_since

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Identity:
        return cls(
            row["id"],
            row["role"],
            row["signing_key"],
            row["encryption_key"],
            row["enrolled_at"],
            row["suspended_at"],
            row["suspended_reason"],
            row.get("keys_since"),
        )


@dataclass(frozen=True, slots=True)
class IdentityKey:
    """Keys an identity held from entry *valid_from* until (excluding) *valid_until*; None
    for the current keys. Entries in that range were signed with *signing_key*."""

    identity_id: str
    signing_key: str  # Ed25519 public key, base64
    encryption_key: str | None
    valid_from: int
    valid_until: int | None

    def covers(self, index: int) -> bool:
        return self.valid_from <= index and (self.valid_until is None or index < self.valid_until)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IdentityKey:
        return cls(
            row["identity_id"],
            row["signing_key"],
            row["encryption_key"],
            row["valid_from"],
            row["valid_until"],
        )

    @classmethod
    def current(cls, identity: Identity) -> IdentityKey:
        return cls(
            identity.id,
            identity.signing_key,
            identity.encryption_key,
            identity.keys_valid_from,
            None,
        )


@dataclass(frozen=True, slots=True)
class Patient:
    """A registered pseudonym, the patient identity that owns it, and its record key."""

    pseudonym: str
    identity_id: str
    record_public_key: str
    registered_at: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Patient:
        return cls(
            row["pseudonym"], row["identity_id"], row["record_public_key"], row["registered_at"]
        )


@dataclass(frozen=True, slots=True)
class Permission:
    """A grant of *rights* on *categories* of a pseudonym's records to a grantee, valid from
    *not_before* until (excluding) *not_after*, unless revoked."""

    permission_id: str
    pseudonym: str
    grantee: str
    rights: tuple[str, ...]  # sorted, from "read", "share", "write"
    categories: Categories
    not_before: str
    not_after: str
    study_id: str | None
    anonymise: bool | None
    granted_at: int
    revoked_at: int | None
    study_pseudonym: str | None = None
    study_secret: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Permission:
        anonymise = row["anonymise"]
        return cls(
            row["permission_id"],
            row["pseudonym"],
            row["grantee"],
            _names(row["rights"]),
            _categories(row["categories"]),
            row["not_before"],
            row["not_after"],
            row["study_id"],
            None if anonymise is None else bool(anonymise),
            row["granted_at"],
            row["revoked_at"],
            row.get("study_pseudonym"),
            row.get("study_secret"),
        )


@dataclass(frozen=True, slots=True)
class Record:
    """A committed record: where its sealed body is, its hashes, and who wrote it."""

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
    rekeyed_at: int | None
    key_generation: int = 1

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Record:
        return cls(
            row["record_id"],
            row["pseudonym"],
            row["category"],
            row["body_sha256"],
            row["size"],
            tuple(json.loads(row["locators"])),
            row["capsule_sha256"],
            row["content_type"],
            row["created_at"],
            row["uploader"],
            row["on_behalf_of"],
            row["entry_index"],
            row["rekeyed_at"],
            row["key_generation"],
        )


@dataclass(frozen=True, slots=True)
class KeyShare:
    """The patient's key K sealed to a grantee (the latest one deposited)."""

    pseudonym: str
    grantee: str
    sealed_key: str  # base64
    entry_index: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> KeyShare:
        return cls(row["pseudonym"], row["grantee"], row["sealed_key"], row["entry_index"])


@dataclass(frozen=True, slots=True)
class PublishedKey:
    """A published (category, month) record public key: its SHA-256 and the index of the
    `publish_keys` entry that carries it (the key itself is in that signed entry)."""

    pseudonym: str
    category: str
    period: str  # YYYY-MM
    public_key_sha256: str
    entry_index: int
    generation: int = 1

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PublishedKey:
        return cls(
            row["pseudonym"],
            row["category"],
            row["period"],
            row["public_key_sha256"],
            row["entry_index"],
            row["generation"],
        )


@dataclass(frozen=True, slots=True)
class Erasure:
    """An erased record: the scope of the `erase` that erased it ("record" or "patient"),
    who signed it, and the entry's index (the entry also holds an admin's legal reason)."""

    record_id: str
    pseudonym: str
    scope: str
    erased_by: str
    entry_index: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Erasure:
        return cls(
            row["record_id"], row["pseudonym"], row["scope"], row["erased_by"], row["entry_index"]
        )


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One audited access: who did what to which pseudonym (and record), the decision, why.

    A refused write or login may name no patient: its pseudonym is then None."""

    entry_index: int
    actor: str
    action: str
    pseudonym: str | None
    record_id: str | None
    category: str | None
    decision: str  # "allowed" or "denied"
    reason: str
    at: str

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccessEvent:
        return cls(
            row["entry_index"],
            row["actor"],
            row["action"],
            row["pseudonym"],
            row["record_id"],
            row["category"],
            row["decision"],
            row["reason"],
            row["at"],
        )


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """A clinician's, system's or auditor's request to a patient for rights."""

    request_id: str
    requester: str
    pseudonym: str
    rights: tuple[str, ...]
    categories: Categories
    reason: str
    entry_index: int
    not_before: str | None = None
    not_after: str | None = None
    decision: str | None = None
    """None while pending; then "approved" or "declined"."""
    permission_id: str | None = None
    answered_at: int | None = None

    @property
    def pending(self) -> bool:
        return self.decision is None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AccessRequest:
        return cls(
            row["request_id"],
            row["requester"],
            row["pseudonym"],
            _names(row["rights"]),
            _categories(row["categories"]),
            row["reason"],
            row["entry_index"],
            row.get("not_before"),
            row.get("not_after"),
            row.get("decision"),
            row.get("permission_id"),
            row.get("answered_at"),
        )


class Converted(Generic[T]):
    """The result made from each state row, reused while that row is the current one.

    The state never changes a row in place (a change puts a new row), so a result made from
    the very row object the state holds now is still right; an in-memory lookup then costs
    a dict probe instead of building a frozen dataclass. At most *limit* results are kept.
    """

    __slots__ = ("_limit", "_made", "_make")

    def __init__(self, make: Callable[[Mapping[str, Any]], T], limit: int = 65_536) -> None:
        self._make = make
        self._limit = limit
        self._made: dict[Hashable, tuple[Mapping[str, Any], T]] = {}

    def get(self, key: Hashable, row: Mapping[str, Any] | None) -> T | None:
        """The result of *row*, the state's current row for *key* (None: no such row)."""
        if row is None:
            return None
        made = self._made.get(key)
        if made is not None and made[0] is row:
            return made[1]
        if len(self._made) >= self._limit:
            self._made.clear()
        result = self._make(row)
        self._made[key] = (row, result)
        return result


__all__ = [
    "AccessEvent",
    "AccessRequest",
    "Categories",
    "Converted",
    "Identity",
    "IdentityKey",
    "KeyShare",
    "Patient",
    "Permission",
    "Record",
]
