"""What the SDK returns: small frozen dataclasses read from the gateway's JSON answers.

Each model read from an answer has `from_json`, one reader for all of them that follows
the dataclass's fields and types and raises `MalformedAnswer` on anything unexpected; a
model whose members the ledger defines is declared with its `ledger.wire.shapes` shape,
and must have exactly its members. Each has `to_json` (the form the command line prints
with --json).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from ehrgate.errors import MalformedAnswer
from ledger.wire import shapes
from ledger.wire.blocks import Block

T = TypeVar("T")
Reader = Callable[[Any, str, str], Any]
"""Reads member *name* of an answer (called *where* in errors) or raises MalformedAnswer."""


def _get(data: Any, name: str, kind: type[T], where: str) -> T:
    if not isinstance(data, dict) or name not in data:
        raise MalformedAnswer(f"the gateway's {where} has no {name!r}")
    value = data[name]
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


def _categories(data: Any, name: str, where: str) -> tuple[str, ...] | str:
    if isinstance(data, dict) and data.get(name) == "all":
        return "all"
    return _strings(data, name, where)


def _one_of(kind: type[Any]) -> Reader:
    return lambda data, name, where: _get(data, name, kind, where)


def _maybe(kind: type[Any]) -> Reader:
    return lambda data, name, where: _optional(data, name, kind, where)


def _number(data: Any, name: str, where: str) -> float:
    value = data.get(name) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedAnswer(f"the gateway's {where} has a malformed {name!r}")
    return float(value)


_READERS: dict[Any, Reader] = {
    str: _one_of(str),
    float: _number,
    int: _one_of(int),
    bool: _one_of(bool),
    str | None: _maybe(str),
    int | None: _maybe(int),
    bool | None: _maybe(bool),
    tuple[str, ...]: _strings,
    tuple[str, ...] | str: _categories,
}


def _reader(annotation: Any, default: Any) -> Reader:
    if isinstance(annotation, type) and issubclass(annotation, Answer):
        nested = annotation
        return lambda data, name, where: nested.from_json(_get(data, name, dict, where))
    read = _READERS[annotation]
    if default is dataclasses.MISSING:
        return read
    absent = _maybe(annotation)
    return lambda data, name, where: (
        default if absent(data, name, where) is None else read(data, name, where)
    )


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


class Answer(_Jsonable):
    """A model read from the gateway's JSON: `from_json` reads each of its fields."""

    _readers: ClassVar[dict[str, Reader]]
    _where: ClassVar[str]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """The model of *data*; MalformedAnswer when a member is missing or mistyped."""
        return cls(**{name: read(data, name, cls._where) for name, read in cls._readers.items()})


AnswerClass = TypeVar("AnswerClass", bound=type[Any])


def answer(shape: shapes.Shape | None = None) -> Callable[[AnswerClass], AnswerClass]:
    """Finish a dataclass model of an answer: one reader per field, from the field's type.

    With *shape*, the model must have exactly the members the wire layer gives it.
    """

    def finish(cls: AnswerClass) -> AnswerClass:
        fields = dataclasses.fields(cls)
        hints = typing.get_type_hints(cls)
        if shape is not None:
            _check_shape(cls.__name__, fields, hints, shape)
        cls._readers = {field.name: _reader(hints[field.name], field.default) for field in fields}
        cls._where = re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()
        return cls

    return finish


def _check_shape(
    name: str,
    fields: tuple[dataclasses.Field[Any], ...],
    hints: dict[str, Any],
    shape: shapes.Shape,
) -> None:
    """Raise TypeError unless the fields are the shape's members, optional where it says."""
    if {field.name for field in fields} != set(shape.names):
        raise TypeError(f"{name} does not have the members of its wire shape")
    may_lack = {
        field.name
        for field in fields
        if field.default is not dataclasses.MISSING
        or type(None) in typing.get_args(hints[field.name])
    }
    if not set(shape.optional) <= may_lack:
        raise TypeError(f"{name} needs members its wire shape makes optional")


@answer(shapes.BLOCK)
@dataclass(frozen=True, slots=True)
class TreeHead(Answer):
    """A signed tree head: the ledger's block at `height`, covering `tree_size` entries."""

    height: int
    previous_hash: str
    tree_size: int
    root: str
    timestamp: str
    signature: str

    def block(self) -> Block:
        """The ledger's own form of this head; ValueError when a hash or the signature is
        not well formed."""
        return Block.from_json(self.to_json())


@answer(shapes.RECEIPT)
@dataclass(frozen=True, slots=True)
class Receipt(Answer):
    """Where a transaction is on the log: its index, leaf hash, and proof under a head."""

    index: int
    tx_hash: str
    tree_head: TreeHead
    inclusion_proof: tuple[str, ...]


@answer()
@dataclass(frozen=True, slots=True)
class Identity(Answer):
    """An enrolled identity's role and public keys."""

    id: str
    role: str
    signing_public_key: str
    encryption_public_key: str
    suspended: bool = False


@answer()
@dataclass(frozen=True, slots=True)
class IdentityKey(Answer):
    """A key an identity held: the entries from *valid_from* until (excluding) *valid_until*
    (None: the current key) were signed with it."""

    signing_public_key: str
    encryption_public_key: str
    valid_from: int
    valid_until: int | None

    def covers(self, index: int) -> bool:
        return self.valid_from <= index and (self.valid_until is None or index < self.valid_until)


@answer()
@dataclass(frozen=True, slots=True)
class Patient(Answer):
    """A registered patient: pseudonym, its identity and the record public key."""

    pseudonym: str
    identity_id: str
    record_public_key: str


@answer(shapes.PERMISSION)
@dataclass(frozen=True, slots=True)
class Permission(Answer):
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
    study_pseudonym: str | None = None
    study_secret: str | None = None


@answer(shapes.RECORD)
@dataclass(frozen=True, slots=True)
class Record(Answer):
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
    access_entry: int | None = None
    """The ledger index of the one `access` entry that audited the whole read (record,
    proof, capsule, key share and body: GET /v1/records/{id}/open); None from a gateway
    without that route, whose old routes audit each request apart."""


@answer()
@dataclass(frozen=True, slots=True)
class AccessEvent(Answer):
    """One audited access: who did what to which record, when, allowed or denied, why.

    `action` is a read (`list`, `record`, `body`, ...) or a refused write or login
    (`commit_record`, `grant`, `login`, ...: `ledger.wire.shapes.ACCESS_ACTIONS`); a refusal
    names no record, so its `record_id` is None."""

    entry_index: int
    actor: str
    action: str
    record_id: str | None
    category: str | None
    decision: str
    reason: str
    at: str


@answer()
@dataclass(frozen=True, slots=True)
class AccessRequest(Answer):
    """A clinician's or system's request to a patient for rights."""

    request_id: str
    requester: str
    pseudonym: str
    rights: tuple[str, ...]
    categories: tuple[str, ...] | str
    reason: str
    not_before: str | None = None
    not_after: str | None = None
    decision: str | None = None
    """None while pending, then "approved" or "declined"."""
    permission_id: str | None = None

    @property
    def pending(self) -> bool:
        return self.decision is None


@answer()
@dataclass(frozen=True, slots=True)
class Webhook(Answer):
    """A webhook endpoint the caller registered."""

    endpoint_id: str
    url: str
    kinds: tuple[str, ...]
    created_at: float


@answer()
@dataclass(frozen=True, slots=True)
class Delivery(Answer):
    """A queued notification (a dead letter, as admins see them)."""

    delivery_id: str
    event_id: str
    kind: str
    channel: str
    target: str
    status: str
    attempts: int
    last_error: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class LedgerHead(_Jsonable):
    """The gateway's latest signed tree head (verified) and the key that signs heads."""

    tree_head: TreeHead | None
    ledger_public_key: str


@dataclass(frozen=True, slots=True)
class LedgerCheckpoint(_Jsonable):
    """The log's C2SP checkpoint (verified), and the trusted witnesses that cosigned it."""

    origin: str
    tree_size: int
    root: str
    checkpoint_key: str
    cosigned_by: tuple[str, ...]
    note: str


@answer()
@dataclass(frozen=True, slots=True)
class PendingDeletion(Answer):
    """A copy an erasure could not delete yet (a store was down): `ehrgate gc` retries."""

    locator: str
    problem: str


@dataclass(frozen=True, slots=True)
class Erased(_Jsonable):
    """An `erase` on the ledger (its verified receipt) and what the gateway deleted."""

    scope: str  # "record" or "patient"
    pseudonym: str
    record_ids: tuple[str, ...]
    receipt: Receipt
    deleted: int
    pending: tuple[PendingDeletion, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class RecordProof(_Jsonable):
    """A record with its inclusion proof, checked against a tree head the ledger signed."""

    record: Record
    receipt: Receipt
    ledger_public_key: str


@answer()
@dataclass(frozen=True, slots=True)
class BreakGlassSession(Answer):
    """A break-glass session: who opened it on whom, why, until when, and its review."""

    session_id: str
    pseudonym: str
    invoker: str
    emergency_identity: str
    hospital: str
    categories: tuple[str, ...] | str
    reason: str
    details: str
    started_at: str
    ends_at: str
    active: bool
    entry_index: int
    verdict: str | None
    reviewer: str | None
    review_note: str | None


@answer()
@dataclass(frozen=True, slots=True)
class StudyExport(Answer):
    """One record exported to a study, as the study sees it (its study pseudonym only)."""

    export_id: str
    study_id: str
    study_pseudonym: str
    anonymised: bool
    category: str
    created_at: str
    content_type: str
    body_sha256: str
    size: int
    capsule_sha256: str
    entry_index: int
