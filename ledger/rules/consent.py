"""Rules of the patient's consent transactions: grant, revoke, key_share, access_request,
answer_request."""

from __future__ import annotations

from typing import Any

from ledger.errors import MalformedTransaction
from ledger.rules import keys, research
from ledger.rules.actors import known_identity, owned_patient, require_role, signer_row
from ledger.rules.validators import (
    b64_field,
    categories_field,
    check_fields,
    deny,
    hex64_field,
    ident_field,
    joined,
    rights_field,
    text_field,
    time_field,
)
from ledger.state import Changes, StateView
from ledger.wire.shapes import GRANT_TX, REQUEST_DECISIONS
from ledger.wire.transactions import Transaction

_GRANT_FIELDS = set(GRANT_TX.required)
_GRANT_OPTIONAL = frozenset(GRANT_TX.optional)
_KEY_SHARE_OPTIONAL = frozenset({"scope"})


def _check_study(body: dict[str, Any], rights: list[str]) -> tuple[Any, Any]:
    """(study_id, anonymise): both given with a share right, neither without one (nor the
    study pseudonym and sealed study secret, which only a share right may carry)."""
    study_id, anonymise = body.get("study_id"), body.get("anonymise")
    if "share" not in rights and ("study_pseudonym" in body or "study_secret" in body):
        raise deny(
            "study-without-share",
            "study_pseudonym and study_secret belong to a share right only",
        )
    if "share" in rights:
        if study_id is None or anonymise is None:
            raise deny(
                "share-needs-study", "a share right needs study_id and anonymise (true/false)"
            )
        ident_field(body, "study_id")
        if not isinstance(anonymise, bool):
            raise MalformedTransaction("body.anonymise must be true or false")
    elif study_id is not None or anonymise is not None:
        raise deny("study-without-share", "study_id and anonymise belong to a share right only")
    return study_id, anonymise


def grant(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _GRANT_FIELDS, _GRANT_OPTIONAL)
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    permission_id = ident_field(body, "permission_id")
    grantee = ident_field(body, "grantee")
    rights = rights_field(body)
    categories = categories_field(state, body)
    not_before, not_after = time_field(body, "not_before"), time_field(body, "not_after")
    patient = owned_patient(state, tx, pseudonym)
    if not_before >= not_after:
        raise deny("empty-interval", "not_before must be earlier than not_after")
    study_id, anonymise = _check_study(body, rights)
    study_pseudonym, study_secret = research.study_terms(body)
    if grantee == patient["identity_id"]:
        raise deny("self-grant", "a patient always has every right on its own records")
    known_identity(state, grantee, "grantee")
    if state.get("permissions", permission_id) is not None:
        raise deny("duplicate-permission", f"permission {permission_id} already exists")
    out.put(
        "permissions",
        {
            "permission_id": permission_id,
            "pseudonym": pseudonym,
            "grantee": grantee,
            "rights": joined(rights),
            "categories": joined(categories),
            "not_before": not_before,
            "not_after": not_after,
            "study_id": study_id,
            "anonymise": anonymise,
            "granted_at": index,
            "revoked_at": None,
            "study_pseudonym": study_pseudonym,
            "study_secret": study_secret,
        },
    )


def revoke(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"pseudonym", "permission_id"})
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    permission_id = ident_field(body, "permission_id")
    owned_patient(state, tx, pseudonym)
    permission = state.get("permissions", permission_id)
    if permission is None or permission["pseudonym"] != pseudonym:
        raise deny(
            "unknown-permission", f"permission {permission_id} does not exist on {pseudonym}"
        )
    if permission["revoked_at"] is not None:
        raise deny("already-revoked", f"permission {permission_id} is already revoked")
    out.put("permissions", {**permission, "revoked_at": index})


def key_share(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, {"pseudonym", "grantee", "sealed_key"}, _KEY_SHARE_OPTIONAL)
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    grantee = ident_field(body, "grantee")
    sealed_key = b64_field(body, "sealed_key")
    owned_patient(state, tx, pseudonym)
    known_identity(state, grantee, "grantee")
    if "scope" in body:  # a scoped share (seeds); without it, K itself (version 1)
        keys.check_scope(state, body, pseudonym, grantee, now)
    out.put(
        "key_shares",
        {"pseudonym": pseudonym, "grantee": grantee, "sealed_key": sealed_key,
         "entry_index": index},
    )  # fmt: skip


_REQUEST_FIELDS = {"pseudonym", "rights", "categories", "reason"}
_REQUEST_OPTIONAL = frozenset({"not_before", "not_after"})
_ANSWER_OPTIONAL = frozenset({"permission_id"})


def _request_period(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(not_before, not_after) of a request: both given, or neither."""
    if "not_before" not in body and "not_after" not in body:
        return None, None
    if "not_before" not in body or "not_after" not in body:
        raise deny("half-period", "a requested period needs both not_before and not_after")
    not_before, not_after = time_field(body, "not_before"), time_field(body, "not_after")
    if not_before >= not_after:
        raise deny("empty-interval", "not_before must be earlier than not_after")
    return not_before, not_after


def access_request(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    body = tx.body
    check_fields(body, _REQUEST_FIELDS, _REQUEST_OPTIONAL)
    require_role(signer_row(state, tx), "clinician", "system", "auditor")
    pseudonym = hex64_field(body, "pseudonym")
    rights = rights_field(body)
    categories = categories_field(state, body)
    reason = text_field(body, "reason")
    not_before, not_after = _request_period(body)
    if state.get("patients", pseudonym) is None:
        raise deny("unknown-pseudonym", f"pseudonym {pseudonym} is not registered")
    out.put(
        "access_requests",
        {
            "request_id": tx.tx_id,
            "requester": tx.signer,
            "pseudonym": pseudonym,
            "rights": joined(rights),
            "categories": joined(categories),
            "reason": reason,
            "entry_index": index,
            "not_before": not_before,
            "not_after": not_after,
            "decision": None,
            "permission_id": None,
            "answered_at": None,
        },
    )


def answer_request(state: StateView, tx: Transaction, now: str, index: int, out: Changes) -> None:
    """The patient approves (naming the permission it granted the requester) or declines."""
    body = tx.body
    check_fields(body, {"pseudonym", "request_id", "decision"}, _ANSWER_OPTIONAL)
    signer_row(state, tx)
    pseudonym = hex64_field(body, "pseudonym")
    request_id = ident_field(body, "request_id")
    decision = body.get("decision")
    if decision not in REQUEST_DECISIONS:
        raise MalformedTransaction(
            f"body.decision must be one of {', '.join(REQUEST_DECISIONS)}, got {decision!r}"
        )
    owned_patient(state, tx, pseudonym)
    request = state.get("access_requests", request_id)
    if request is None or request["pseudonym"] != pseudonym:
        raise deny("unknown-request", f"there is no access request {request_id} on {pseudonym}")
    if request["decision"] is not None:
        raise deny(
            "already-answered", f"access request {request_id} was already {request['decision']}"
        )
    permission_id = None
    if decision == "approved":
        if "permission_id" not in body:
            raise deny(
                "approval-needs-grant",
                "an approval names the permission granted for the request (permission_id);"
                " commit that grant first",
            )
        permission_id = ident_field(body, "permission_id")
        permission = state.get("permissions", permission_id)
        if (
            permission is None
            or permission["pseudonym"] != pseudonym
            or permission["grantee"] != request["requester"]
            or permission["revoked_at"] is not None
        ):
            raise deny(
                "grant-does-not-match",
                f"permission {permission_id} is not a live grant on {pseudonym} to the"
                f" requester {request['requester']}",
            )
    elif "permission_id" in body:
        raise deny("decline-with-grant", "a declined request names no permission")
    out.put(
        "access_requests",
        {**request, "decision": decision, "permission_id": permission_id, "answered_at": index},
    )
