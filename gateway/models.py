"""Request and response models shared by the routes; every one rejects unknown fields."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

_IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"


def _text(pattern: str, max_length: int, description: str, **more: Any) -> Any:
    """A string field: not empty, at most *max_length* characters, matching *pattern*."""
    return Field(
        min_length=1, max_length=max_length, pattern=pattern, description=description, **more
    )


IdentityId = Annotated[
    str, _text(_IDENTIFIER, 128, "An enrolled identity's id.", examples=["dr-house"])
]
Base64 = Annotated[str, _text(r"^[A-Za-z0-9+/]+={0,2}$", 65_536, "Standard base64 with padding.")]


class StrictModel(BaseModel):
    """Base of every model on the wire: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthStatus(StrictModel):
    status: str = Field(description="'ok' when the process answers.")


class ReadinessStatus(StrictModel):
    status: str = Field(description="'ready' when every backing service answers.")
    checks: dict[str, str] = Field(description="Each service's state: 'ok' or why not.")


class IdentityOut(StrictModel):
    """An identity's public keys and role, as enrolled on the ledger."""

    id: str
    role: str
    signing_public_key: str = Field(description="Ed25519 public key, base64.")
    encryption_public_key: str = Field(description="ML-KEM-768+X25519 public key, base64.")
    suspended: bool = False


class IdentityKeyOut(StrictModel):
    """Keys an identity held, and the ledger entries they were its keys for."""

    signing_public_key: str = Field(description="Ed25519 public key, base64.")
    encryption_public_key: str = Field(description="ML-KEM-768+X25519 public key, base64.")
    valid_from: int = Field(description="First entry index signed with this key.")
    valid_until: int | None = Field(
        description="The entry that replaced this key (excluded); null for the current key."
    )


class IdentityKeysOut(StrictModel):
    """Every key an identity has held, oldest first: a signature of entry i is checked with
    the key whose range covers i."""

    id: str
    keys: list[IdentityKeyOut]


class FieldError(StrictModel):
    loc: list[str] = Field(description="Where: body, query, path or header, then names.")
    msg: str
    type: str


class Problem(StrictModel):
    """An RFC 9457 problem detail, as every error of the gateway is reported."""

    type: str = Field(description="Stable problem type: urn:ehrgate:problem:<slug>.")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = Field(default=None, description="Also in X-Request-ID and the log.")
    errors: list[FieldError] | None = Field(
        default=None, description="For validation-failed: each invalid field."
    )
    code: str | None = Field(
        default=None, description="The ledger's rule code when a transaction was refused."
    )


PROBLEM_REF = "#/components/schemas/Problem"


def problem_schemas() -> dict[str, object]:
    """The component schemas that PROBLEM_REF points into (added to the OpenAPI document)."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, object] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request.",
    401: "No valid bearer token, or authentication failed.",
    403: "The caller may not do this, or is suspended.",
    404: "No such resource.",
    405: "The method is not allowed on this path.",
    409: "Conflicts with the current state.",
    410: "The record was erased; nothing of it is served any more.",
    413: "The body is larger than allowed.",
    415: "Wrong content type.",
    422: "The request does not validate, or the ledger refused it.",
    429: "Too many requests; see Retry-After.",
    500: "Unexpected failure.",
    502: "Stored data failed its integrity check.",
    503: "A backing service is unavailable; see Retry-After.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries documenting problem+json errors."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS[status],
            "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}},
        }
        for status in statuses
    }


Pseudonym = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{64}$",
        min_length=64,
        max_length=64,
        description="A patient pseudonym: 64 lowercase hex characters.",
    ),
]
RecordId = Annotated[str, _text(_IDENTIFIER, 200, "A record's id on the ledger.")]
Category = Annotated[str, _text(r"^[a-z][a-z0-9-]*$", 63, "A record category, e.g. lab-results.")]


class SignedTransaction(StrictModel):
    """A ledger transaction signed by its actor: {type, body, signer, signature}."""

    type: str = Field(max_length=32)
    body: dict[str, Any]
    signer: str = Field(min_length=1, max_length=200)
    signature: Base64 = Field(description="Ed25519 over the canonical JSON of type, body, signer.")


class TreeHead(StrictModel):
    """A signed tree head (a block): height, chain link, tree size, root, time, signature."""

    height: int
    previous_hash: str
    tree_size: int
    root: str
    timestamp: str
    signature: str


class ReceiptOut(StrictModel):
    """Where a transaction is on the log, with its inclusion proof under a signed head."""

    index: int
    tx_hash: str = Field(description="RFC 9162 leaf hash of the transaction, hex.")
    tree_head: TreeHead
    inclusion_proof: list[str] = Field(description="Sibling hashes, hex, leaf to root.")


class Accepted(StrictModel):
    """A transaction is durably on the ledger."""

    receipt: ReceiptOut


class PatientOut(StrictModel):
    pseudonym: str
    identity_id: str
    record_public_key: str = Field(description="Seal records to the patient with this key.")


class PatientRegistered(StrictModel):
    patient: PatientOut
    receipt: ReceiptOut


class PermissionOut(StrictModel):
    permission_id: str
    pseudonym: str
    grantee: str
    rights: list[str]
    categories: list[str] | str = Field(description="Category names, or 'all'.")
    not_before: str
    not_after: str
    study_id: str | None = None
    anonymise: bool | None = None
    study_pseudonym: str | None = Field(
        default=None, description="The patient's pseudonym in the study (share right)."
    )
    study_secret: str | None = Field(
        default=None, description="The study secret sealed to the grantee, base64."
    )
    revoked: bool


class PermissionList(StrictModel):
    permissions: list[PermissionOut]


class PermissionGranted(StrictModel):
    permission: PermissionOut
    receipt: ReceiptOut


class KeyShareOut(StrictModel):
    pseudonym: str
    grantee: str
    sealed_key: str = Field(
        description="The share sealed to the grantee's encryption key, base64: scoped seeds, "
        "or K itself for a share deposited before scoped keys (scope null)."
    )
    record_public_key: str = Field(description="Check an opened K against this key.")
    scope: list[str] | None = Field(
        default=None,
        description='The "category/YYYY-MM" keys a scoped share carries; null for K itself.',
    )


class AccessRequestOut(StrictModel):
    request_id: str
    requester: str
    pseudonym: str
    rights: list[str]
    categories: list[str] | str
    reason: str
    not_before: str | None = Field(default=None, description="Start of the requested period.")
    not_after: str | None = Field(default=None, description="End of the requested period.")
    decision: str | None = Field(
        default=None, description="null while pending, then 'approved' or 'declined'."
    )
    permission_id: str | None = Field(
        default=None, description="The permission the patient granted for an approval."
    )


class AccessRequestList(StrictModel):
    access_requests: list[AccessRequestOut]


class AccessEventOut(StrictModel):
    """One audited access: who, what, when, the decision and why."""

    entry_index: int
    actor: str
    action: str
    record_id: str | None
    category: str | None
    decision: str
    reason: str
    at: str


class AuditLog(StrictModel):
    pseudonym: str
    events: list[AccessEventOut]


class StoredBlobOut(StrictModel):
    sha256: str
    size: int
    locators: list[str]


class RecordCommit(StrictModel):
    """A signed `record` transaction and the capsule whose SHA-256 it names."""

    transaction: SignedTransaction
    capsule: Base64 = Field(description="The capsule bytes, base64.")
    key_generation: int | None = Field(
        default=None,
        ge=1,
        description="The generation of the patient's published key the capsule is sealed "
        "to; refused (409, code stale-key-generation) if the patient has since rotated it.",
    )


class RecordOut(StrictModel):
    record_id: str
    pseudonym: str
    category: str
    body_sha256: str
    size: int
    locators: list[str]
    capsule_sha256: str
    content_type: str
    created_at: str
    uploader: str
    on_behalf_of: str | None = None
    entry_index: int


class RekeyProof(StrictModel):
    """The patient's signed `rekey` that set a record's current capsule, with its proof."""

    transaction: SignedTransaction
    receipt: ReceiptOut


class RecordWithProof(StrictModel):
    """A record with the inclusion proof of its ledger entry and the signed tree head."""

    record: RecordOut
    receipt: ReceiptOut
    transaction: SignedTransaction | None = Field(
        default=None,
        description="The record's signed ledger transaction: its leaf hash is the receipt's "
        "tx_hash, so that a client can tie the proof to this record.",
    )
    rekey: RekeyProof | None = Field(
        default=None,
        description="For a re-keyed record: the rekey entry naming its current capsule "
        "(the record transaction names the capsule it was committed with).",
    )


class RecordList(StrictModel):
    pseudonym: str
    records: list[RecordOut]
    tree_head: TreeHead | None


class LedgerHead(StrictModel):
    tree_head: TreeHead | None
    ledger_public_key: str = Field(description="Ed25519 key that signs tree heads, base64.")
    log_origin: str = Field(description="The log's name in its C2SP checkpoints.")
    checkpoint_key: str = Field(
        description="C2SP verifier key (vkey) of the key that signs the log's checkpoints."
    )


class EntryOut(StrictModel):
    index: int
    block: int
    tx: SignedTransaction


class EntryPage(StrictModel):
    entries: list[EntryOut]
    next_start: int | None = Field(description="Start of the next page, or null at the end.")


class BlockPage(StrictModel):
    blocks: list[TreeHead]
    next_start: int | None


class ConsistencyProof(StrictModel):
    old_size: int
    new_size: int
    proof: list[str]


class PendingDeletion(StrictModel):
    """A copy an erasure could not delete yet: where, and why (`ehrgate gc` retries it)."""

    locator: str = Field(description='A store locator, or "database" for the ledger\'s row.')
    problem: str


class ErasureOut(StrictModel):
    """An `erase` on the ledger and what was deleted because of it."""

    scope: str = Field(description='"record" or "patient" (every record of the pseudonym).')
    pseudonym: str
    record_ids: list[str] = Field(description="The records this erase erased.")
    receipt: ReceiptOut
    transaction: SignedTransaction
    deleted: int = Field(description="Copies deleted: capsule rows and store copies.")
    pending: list[PendingDeletion] = Field(
        description="Copies not deleted yet (a store was down); `ehrgate gc` deletes them."
    )
    complete: bool = Field(description="True when no copy is left anywhere.")
