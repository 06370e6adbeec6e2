"""Rules of research sharing: the study terms of a share grant, and `study_export`.

A share right names a study (`study_id`, an enrolled identity of role `study`) and whether
exports must be anonymised. To be used, it also publishes the patient's pseudonym in that
study (`study_pseudonym`, derived by the patient from K: see envelope.research) and carries
the study secret sealed to the grantee (`study_secret`, opaque here).

A `study_export` is signed by the grantee of such a right, while the right holds, for one
record of the right's patient and categories. It names the copy the study receives: the
same body with a capsule rewrapped for the study (the body's hash, size and locators, the
record's time and content type all unchanged), or with `anonymise` a new sealed copy (a new
body, a shifted date). Either way the capsule is stored with the entry.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.errors import MalformedTransaction
from ledger.rules.actors import known_identity, signer_row
from ledger.rules.validators import (
    b64_field,
    check_fields,
    deny,
    hex64_field,
    ident_field,
    locators_field,
    text_field,
    time_field,
)
from ledger.state import Changes, Row, StateView
from ledger.wire.transactions import Transaction

_MAX_SEALED_SECRET = 4096
_EXPORT_FIELDS = {
    "export_id",
    "permission_id",
    "study_id",
    "study_pseudonym",
    "source_record_id",
    "anonymise",
    "category",
    "created_at",
    "content_type",
    "body_sha256",
    "size",
    "locators",
    "capsule_sha256",
}


def study_terms(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(study_pseudonym, study_secret) of a grant body: both or neither."""
    pseudonym, secret = body.get("study_pseudonym"), body.get("study_secret")
    if (pseudonym is None) != (secret is None):
        raise MalformedTransaction(
            "body.study_pseudonym and body.study_secret come together (the pseudonym the "
            "patient derived for the study, and its secret sealed to the grantee)"
        )
    if pseudonym is None:
        return None, None
    hex64_field(body, "study_pseudonym")
    if body["study_pseudonym"] == body.get("pseudonym"):
        raise MalformedTransaction("body.study_pseudonym must differ from the patient's")
    b64_field(body, "study_secret")
    if len(body["study_secret"]) > _MAX_SEALED_SECRET:
        raise MalformedTransaction("body.study_secret is too long for a sealed study secret")
    return str(pseudonym), str(secret)


def _size(body: dict[str, Any]) -> int:
    size = body["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise MalformedTransaction("body.size must be a non-negative integer")
    return size


def _share_right(state: StateView, tx: Transaction, permission_id: str, now: str) -> Row:
    """The signer's share right *permission_id*, valid at *now*."""
    permission = state.get("permissions", permission_id)
    if permission is None or permission["grantee"] != tx.signer:
        raise deny(
            "not-granted",
            f"{tx.signer!r} holds no permission {permission_id}: only the grantee of a share "
            "right exports under it",
        )
    if "share" not in str(permission["rights"]).split(","):
        raise deny("not-granted", f"permission {permission_id} has no share right")
    if permission["revoked_at"] is not None:
        raise deny("not-granted", f"permission {permission_id} was revoked")
    if not permission["not_before"] <= now < permission["not_after"]:
        raise deny(
            "not-granted",
            f"permission {permission_id} holds from {permission['not_before']} until "
            f"{permission['not_after']}, not at {now}",
        )
    return permission


def _check_terms(state: StateView, body: dict[str, Any], permission: Row) -> tuple[str, str]:
    study_id = ident_field(body, "study_id")
    study = state.get("identities", study_id)
    if study is None or study["role"] != "study":
        raise deny("unknown-study", f"{study_id!r} is not an enrolled study identity")
    if permission["study_id"] != study_id:
        raise deny(
            "not-granted",
            f"permission {permission['permission_id']} shares with study "
            f"{permission['study_id']!r}, not {study_id!r}",
        )
    if permission["study_pseudonym"] is None:
        raise deny(
            "no-study-pseudonym",
            f"permission {permission['permission_id']} publishes no study pseudonym: the "
            "patient must grant the share right again with its study terms",
        )
    study_pseudonym = hex64_field(body, "study_pseudonym")
    if study_pseudonym != permission["study_pseudonym"]:
        raise MalformedTransaction("body.study_pseudonym must be the one the share grant publishes")
    anonymise = body["anonymise"]
    if not isinstance(anonymise, bool):
        raise MalformedTransaction("body.anonymise must be true or false")
    if anonymise != bool(permission["anonymise"]):
        raise deny(
            "not-granted",
            f"permission {permission['permission_id']} requires anonymise="
            f"{str(bool(permission['anonymise'])).lower()}",
        )
    return study_id, study_pseudonym


def _source(state: StateView, body: dict[str, Any], permission: Row) -> Row:
    record_id = ident_field(body, "source_record_id")
    record = state.get("records", record_id)
    if record is None or record["pseudonym"] != permission["pseudonym"]:
        raise deny(
            "not-granted",
            f"record {record_id} is not a record of the patient of permission "
            f"{permission['permission_id']}",
        )
    categories = str(permission["categories"])
    if categories != "all" and record["category"] not in categories.split(","):
        raise deny(
            "not-granted",
            f"record {record_id} is of category {record['category']!r}, which permission "
            f"{permission['permission_id']} does not share ({categories})",
        )
    return record


def _same_body(body: dict[str, Any], record: Row, locators: list[str]) -> None:
    """A rewrapped export keeps the record's body and facts exactly."""
    for name in ("body_sha256", "size", "content_type", "created_at", "category"):
        if body[name] != record[name]:
            raise MalformedTransaction(
                f"body.{name} of an export that is not anonymised must be the record's "
                "(only the capsule changes)"
            )
    if json.dumps(locators, separators=(",", ":")) != record["locators"]:
        raise MalformedTransaction(
            "body.locators of an export that is not anonymised must be the record's"
        )


def study_export(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _EXPORT_FIELDS)
    signer_row(state, tx)
    export_id = ident_field(body, "export_id")
    permission = _share_right(state, tx, ident_field(body, "permission_id"), now)
    study_id, study_pseudonym = _check_terms(state, body, permission)
    record = _source(state, body, permission)
    category = text_field(body, "category", max_len=63)
    created_at = time_field(body, "created_at")
    content_type = text_field(body, "content_type", max_len=200)
    body_sha256 = hex64_field(body, "body_sha256")
    capsule_sha256 = hex64_field(body, "capsule_sha256")
    size, locators = _size(body), locators_field(body)
    if category != record["category"]:
        raise MalformedTransaction("body.category must be the source record's")
    if not body["anonymise"]:
        _same_body(body, record, locators)
    if state.get("study_exports", export_id) is not None:
        raise deny("duplicate-export", f"export {export_id} already exists")
    known_identity(state, study_id, "study")
    out.put(
        "study_exports",
        {
            "export_id": export_id,
            "study_id": study_id,
            "study_pseudonym": study_pseudonym,
            "permission_id": permission["permission_id"],
            "source_record_id": record["record_id"],
            "exporter": tx.signer,
            "anonymise": bool(body["anonymise"]),
            "category": category,
            "created_at": created_at,
            "content_type": content_type,
            "body_sha256": body_sha256,
            "size": size,
            "locators": json.dumps(locators, separators=(",", ":")),
            "capsule_sha256": capsule_sha256,
            "entry_index": index,
        },
    )
