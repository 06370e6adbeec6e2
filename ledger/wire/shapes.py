"""The members of the JSON objects the ledger signs and the gateway answers with, kept once.

A `Shape` names the members an object must have and those it may leave out (or null).
The builders fill transaction bodies with these members, the gateway answers with them and
a client reads and checks them against what was signed; tests/client/test_wire_contract
holds the builders, blocks, receipts, the gateway's OpenAPI document and the SDK's models
to this module.

- `BLOCK`: a signed tree head, as `Block.to_json` writes it.
- `RECEIPT`: where a transaction is on the log, as `Receipt.to_json` writes it.
- `RECORD_TX` and `GRANT_TX`: the bodies of `record` and `grant` transactions (besides
  `tx_id` and `issued_at`, which every body has); `ERASE_TX`, the body of an `erase`.
- `RECORD` and `PERMISSION`: what the gateway answers for a record and a permission: the
  signed body's members and what the ledger adds (who signed, the entry, the revocation).
- `AccessAction`: what an `access` entry says was attempted: a `ReadAction` (allowed or
  denied) or a `RefusedAction` (a refused write or login, always denied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

COMMON_TX_FIELDS = ("tx_id", "issued_at")
"""Members of every transaction body, filled in when it is signed."""


@dataclass(frozen=True, slots=True)
class Shape:
    """The members of one JSON object: those it must have, then those it may lack."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every member, the required ones first."""
        return self.required + self.optional

    def extended(self, *required: str) -> Shape:
        """This shape with more required members."""
        return Shape(self.required + required, self.optional)


BLOCK = Shape(("height", "previous_hash", "tree_size", "root", "timestamp", "signature"))

RECEIPT = Shape(("index", "tx_hash", "tree_head", "inclusion_proof"))

RECORD_TX = Shape(
    (
        "record_id",
        "pseudonym",
        "category",
        "body_sha256",
        "size",
        "locators",
        "capsule_sha256",
        "content_type",
        "created_at",
    ),
    ("on_behalf_of",),
)

GRANT_TX = Shape(
    (
        "permission_id",
        "pseudonym",
        "grantee",
        "rights",
        "categories",
        "not_before",
        "not_after",
    ),
    ("study_id", "anonymise", "study_pseudonym", "study_secret"),
)

ERASE_TX = Shape(("pseudonym", "scope"), ("record_id", "reason"))
"""The body of an `erase`: scope "record" (one record, `record_id`) or "patient" (every
record of the pseudonym); `reason` is the legal reason, required when an admin signs."""

ERASE_SCOPES = ("record", "patient")

RECORD = RECORD_TX.extended("uploader", "entry_index")
"""A record as the gateway shows it: its `record` body, its signer and its log entry."""

PERMISSION = GRANT_TX.extended("revoked")
"""A permission as the gateway shows it: its `grant` body and whether it was revoked."""

REQUEST_DECISIONS = ("approved", "declined")
"""How a patient answers an access request (`answer_request.decision`)."""

ReadAction = Literal[
    "list",
    "record",
    "capsule",
    "body",
    "key_share",
    "access_history",
    "access_requests",
    "permissions",
]
"""A read the gateway decides and audits, allowed or denied: a listing, a record's
metadata, capsule or body, a key share, or the patient's audit, requests or permissions."""

RefusedAction = Literal[
    "commit_record",
    "ingest_document",
    "upload_body",
    "grant",
    "revoke",
    "deposit_key_share",
    "request_access",
    "publish_keys",
    "erase",
    "answer_request",
    "login",
    "enroll",
    "suspend",
    "reinstate",
    "rotate_keys",
    "break_glass_policy",
    "break_glass",
    "break_glass_review",
    "study_export",
    "upload_export_body",
    "rekey",
]
"""A write, an administrator's act (enroll, suspend, reinstate, rotate keys) or a login
the gateway refused a known identity. Only refusals are audited as
such (an accepted write is its own transaction, a login leaves no entry), so an `access`
entry with one of these actions is always `denied`, and its pseudonym is optional: a login
names none unless the identity is a patient, and a write names one only if it is registered."""

AccessAction = Literal[ReadAction, RefusedAction]
"""What an `access` entry says was attempted."""

READ_ACTIONS: tuple[str, ...] = get_args(ReadAction)
REFUSED_ACTIONS: tuple[str, ...] = get_args(RefusedAction)
ACCESS_ACTIONS: tuple[str, ...] = READ_ACTIONS + REFUSED_ACTIONS
