"""Patients: registration (self-signed), record public key, and the audited reads of a
patient's records list, permissions, key share, access history and access requests."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.access import (
    Access,
    HistoryAccess,
    KeyShareAccess,
    ListAccess,
    PermissionsAccess,
    RequestsAccess,
)
from gateway.deps import BackendsDep, CallerDep, StateDep, client_address
from gateway.errors import NotFound, RecordErased
from gateway.models import (
    AccessRequestList,
    AuditLog,
    KeyShareOut,
    PatientOut,
    PatientRegistered,
    PermissionList,
    Pseudonym,
    RecordList,
    SignedTransaction,
    problem_responses,
)
from gateway.transactions import parse_signed, submit
from gateway.views import (
    access_event_out,
    access_request_out,
    patient_out,
    permission_out,
    receipt_out,
    record_out,
    tree_head_out,
)

router = APIRouter(prefix="/v1/patients", tags=["patients"])
_READ = problem_responses(401, 403)


@router.post(
    "",
    response_model=PatientRegistered,
    status_code=201,
    responses=problem_responses(403, 409, 429),
)
async def register(
    transaction: SignedTransaction, request: Request, backends: BackendsDep, state: StateDep
) -> PatientRegistered:
    """Register a patient: a `register_patient` signed by the key it carries."""
    # No token yet (the patient is not on the ledger); the signature proves possession.
    limiter = state.authenticator.limiter
    key = f"client:{client_address(request) or 'unknown'}"
    if state.authenticator.blocking:
        await run_in_threadpool(limiter.hit, key)
    else:
        limiter.hit(key)
    tx = parse_signed(transaction, expected_type="register_patient", principal=None)
    receipt = await submit(backends, state.metrics, tx)
    patient = backends.ledger.patient(str(tx.body["pseudonym"]))
    assert patient is not None  # committed just now
    return PatientRegistered(patient=patient_out(patient), receipt=receipt_out(receipt))


@router.get("/{pseudonym}", response_model=PatientOut, responses=_READ)
async def get_patient(pseudonym: Pseudonym, caller: CallerDep) -> PatientOut:
    """A registered patient's record public key, to seal documents to it."""
    patient = caller.backends.ledger.patient(pseudonym)
    if patient is None:
        raise NotFound(f"pseudonym {pseudonym} is not registered")
    return patient_out(patient)


@router.get("/{pseudonym}/records", response_model=RecordList, responses=_READ)
async def list_records(access: ListAccess) -> Response:
    """A patient's records, of one category or of every category the caller may read now."""
    # The list is read and encoded in one worker hop while the `access` entry commits; it
    # is sent only once that entry is durable.
    answer = await run_in_threadpool(_record_list, access)
    await access.confirmed()
    return Response(answer, media_type="application/json")


def _record_list(access: Access) -> bytes:
    ledger = access.backends.ledger
    records = ledger.records_of(access.pseudonym, access.category)
    if access.category is None:
        readable = set(access.readable_categories)
        records = [record for record in records if record.category in readable]
    # Erased records are left out: nothing of them can be read any more.
    records = [record for record in records if ledger.erasure(record.record_id) is None]
    head = ledger.head()
    return (
        RecordList(
            pseudonym=access.pseudonym,
            records=[record_out(record) for record in records],
            tree_head=tree_head_out(head) if head is not None else None,
        )
        .model_dump_json()
        .encode()
    )


@router.get("/{pseudonym}/permissions", response_model=PermissionList, responses=_READ)
async def list_permissions(access: PermissionsAccess) -> PermissionList:
    """Permissions on a patient: all of them for the patient, a grantee's own otherwise."""
    grantee = None if access.owner else access.principal.id
    permissions = await run_in_threadpool(
        lambda: access.backends.ledger.permissions_for(
            access.pseudonym, grantee, include_revoked=True
        )
    )
    return PermissionList(permissions=[permission_out(p) for p in permissions])


@router.get("/{pseudonym}/key-share", response_model=KeyShareOut, responses=_READ)
async def get_key_share(access: KeyShareAccess) -> KeyShareOut:
    """The caller's key share (K sealed to it), only with a read right valid now."""
    ledger = access.backends.ledger
    share = ledger.key_share(access.pseudonym, access.principal.id)
    patient = ledger.patient(access.pseudonym)
    if share is None or patient is None:
        raise NotFound("the patient has deposited no key share for the caller")
    erased = await run_in_threadpool(ledger.erasures_of, access.pseudonym)
    if any(e.scope == "patient" for e in erased):
        raise RecordErased(
            f"every record of {access.pseudonym} was erased (the right to be forgotten): its "
            "key shares are no longer handed out"
        )
    entry = await run_in_threadpool(ledger.entry, share.entry_index)
    scope = entry.tx.body.get("scope")
    return KeyShareOut(
        pseudonym=access.pseudonym,
        grantee=access.principal.id,
        sealed_key=share.sealed_key,
        record_public_key=patient.record_public_key,
        scope=list(scope) if isinstance(scope, list) else None,
    )


@router.get("/{pseudonym}/audit", response_model=AuditLog, responses=_READ)
async def audit_log(access: HistoryAccess) -> AuditLog:
    """The patient's access history: who read what, when, allowed or denied, and why."""
    events = await run_in_threadpool(
        access.backends.ledger.access_history, access.pseudonym, 10_000
    )
    return AuditLog(pseudonym=access.pseudonym, events=[access_event_out(e) for e in events])


@router.get("/{pseudonym}/access-requests", response_model=AccessRequestList, responses=_READ)
async def list_access_requests(
    access: RequestsAccess,
    pending: Annotated[bool, Query(description="Only the requests not answered yet.")] = False,
) -> AccessRequestList:
    """Requests for rights that clinicians have made to the patient, with their answers."""
    ledger = access.backends.ledger
    requests = await run_in_threadpool(
        lambda: ledger.access_requests(access.pseudonym, pending=pending)
    )
    return AccessRequestList(access_requests=[access_request_out(r) for r in requests])
