"""Ledger results and objects as the gateway's response models."""

from __future__ import annotations

import orjson
from starlette.responses import Response

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
from ledger.results import (
    AccessEvent,
    AccessRequest,
    Categories,
    Identity,
    Patient,
    Permission,
    Record,
)
from ledger.wire.blocks import Block, Receipt


def _names(categories: Categories) -> list[str] | str:
    return categories if isinstance(categories, str) else list(categories)


def tree_head_out(block: Block) -> TreeHead:
    return TreeHead.model_validate(block.to_json())


def receipt_out(receipt: Receipt) -> ReceiptOut:
    return ReceiptOut.model_validate(receipt.to_json())


class JSONBytes(Response):
    """A JSON answer whose bytes are already made (orjson): for hot routes that would
    otherwise validate their model once more and serialise it again."""

    media_type = "application/json"


def identity_json(identity: Identity) -> JSONBytes:
    """`identity_out(identity)` as a response, without the model round trip."""
    return JSONBytes(
        orjson.dumps(
            {
                "id": identity.id,
                "role": identity.role,
                "signing_public_key": identity.signing_key,
                "encryption_public_key": identity.encryption_key or "",
                "suspended": identity.suspended,
            }
        )
    )


def identity_out(identity: Identity) -> IdentityOut:
    return IdentityOut(
        id=identity.id,
        role=identity.role,
        signing_public_key=identity.signing_key,
        encryption_public_key=identity.encryption_key or "",
        suspended=identity.suspended,
    )


def patient_out(patient: Patient) -> PatientOut:
    return PatientOut(
        pseudonym=patient.pseudonym,
        identity_id=patient.identity_id,
        record_public_key=patient.record_public_key,
    )


def permission_out(permission: Permission) -> PermissionOut:
    return PermissionOut(
        permission_id=permission.permission_id,
        pseudonym=permission.pseudonym,
        grantee=permission.grantee,
        rights=list(permission.rights),
        categories=_names(permission.categories),
        not_before=permission.not_before,
        not_after=permission.not_after,
        study_id=permission.study_id,
        anonymise=permission.anonymise,
        study_pseudonym=permission.study_pseudonym,
        study_secret=permission.study_secret,
        revoked=permission.revoked,
    )


def record_out(record: Record) -> RecordOut:
    return RecordOut(
        record_id=record.record_id,
        pseudonym=record.pseudonym,
        category=record.category,
        body_sha256=record.body_sha256,
        size=record.size,
        locators=list(record.locators),
        capsule_sha256=record.capsule_sha256,
        content_type=record.content_type,
        created_at=record.created_at,
        uploader=record.uploader,
        on_behalf_of=record.on_behalf_of,
        entry_index=record.entry_index,
    )


def access_request_out(request: AccessRequest) -> AccessRequestOut:
    return AccessRequestOut(
        request_id=request.request_id,
        requester=request.requester,
        pseudonym=request.pseudonym,
        rights=list(request.rights),
        categories=_names(request.categories),
        reason=request.reason,
        not_before=request.not_before,
        not_after=request.not_after,
        decision=request.decision,
        permission_id=request.permission_id,
    )


def access_event_out(event: AccessEvent) -> AccessEventOut:
    return AccessEventOut(
        entry_index=event.entry_index,
        actor=event.actor,
        action=event.action,
        record_id=event.record_id,
        category=event.category,
        decision=event.decision,
        reason=event.reason,
        at=event.at,
    )
