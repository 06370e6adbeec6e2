"""Ledger rows and objects as the gateway's response models."""

from __future__ import annotations

from typing import Any

from gateway.models import (
    AccessEventOut,
    AccessRequestOut,
    IdentityOut,
    PatientOut,
    PermissionOut,
    ReceiptOut,
    RecordOut,
    TreeHead,
)
from ledger.wire.blocks import Block, Receipt

Row = dict[str, Any]


def _names(joined: str) -> list[str] | str:
    return "all" if joined == "all" else joined.split(",")


def tree_head_out(block: Block) -> TreeHead:
    return TreeHead.model_validate(block.to_json())


def receipt_out(receipt: Receipt) -> ReceiptOut:
    return ReceiptOut.model_validate(receipt.to_json())


def identity_out(row: Row) -> IdentityOut:
    return IdentityOut(
        id=row["id"],
        role=row["role"],
        signing_public_key=row["signing_key"],
        encryption_public_key=row["encryption_key"] or "",
        suspended=row["suspended_at"] is not None,
    )


def patient_out(row: Row) -> PatientOut:
    return PatientOut(
        pseudonym=row["pseudonym"],
        identity_id=row["identity_id"],
        record_public_key=row["record_public_key"],
    )


def permission_out(row: Row) -> PermissionOut:
    return PermissionOut(
        permission_id=row["permission_id"],
        pseudonym=row["pseudonym"],
        grantee=row["grantee"],
        rights=row["rights"].split(","),
        categories=_names(row["categories"]),
        not_before=row["not_before"],
        not_after=row["not_after"],
        study_id=row.get("study_id"),
        anonymise=row.get("anonymise"),
        revoked=row["revoked_at"] is not None,
    )


def record_out(row: Row) -> RecordOut:
    return RecordOut(
        record_id=row["record_id"],
        pseudonym=row["pseudonym"],
        category=row["category"],
        body_sha256=row["body_sha256"],
        size=row["size"],
        locators=list(row["locators"]),
        capsule_sha256=row["capsule_sha256"],
        content_type=row["content_type"],
        created_at=row["created_at"],
        uploader=row["uploader"],
        on_behalf_of=row.get("on_behalf_of"),
        entry_index=row["entry_index"],
    )


def access_request_out(row: Row) -> AccessRequestOut:
    return AccessRequestOut(
        request_id=row["request_id"],
        requester=row["requester"],
        pseudonym=row["pseudonym"],
        rights=row["rights"].split(","),
        categories=_names(row["categories"]),
        reason=row["reason"],
    )


def access_event_out(row: Row) -> AccessEventOut:
    return AccessEventOut(
        entry_index=row["entry_index"],
        actor=row["actor"],
        action=row["action"],
        record_id=row.get("record_id"),
        category=row.get("category"),
        decision=row["decision"],
        reason=row["reason"],
        at=row["at"],
    )
