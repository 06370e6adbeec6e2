"""The ledger for mirrors and verifiers: signed head, C2SP checkpoint, entries, blocks,
consistency proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from envelope import b64encode
from gateway.deps import BackendsDep, Caller, require_role
from gateway.errors import NotFound
from gateway.models import (
    BlockPage,
    ConsistencyProof,
    EntryOut,
    EntryPage,
    LedgerHead,
    SignedTransaction,
    problem_responses,
)
from gateway.views import tree_head_out
from ledger.wire.checkpoints import checkpoint_of, sign_checkpoint

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

MirrorDep = Annotated[Caller, Depends(require_role("auditor", "admin"))]
PageStart = Annotated[int, Query(ge=0, le=2**53, description="First index of the page.")]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="At most this many.")]


@router.get("/head", response_model=LedgerHead)
async def head(backends: BackendsDep) -> LedgerHead:
    """The latest signed tree head and the key that signs it."""
    block = await run_in_threadpool(backends.ledger.head)
    return LedgerHead(
        tree_head=tree_head_out(block) if block is not None else None,
        ledger_public_key=b64encode(backends.ledger.verify_key.to_bytes()),
        log_origin=backends.checkpoint_signer.name,
        checkpoint_key=backends.checkpoint_signer.verifier.vkey(),
    )


@router.get(
    "/checkpoint",
    response_class=Response,
    responses={
        200: {
            "description": "A checkpoint as a C2SP signed note (tlog-checkpoint v1), signed by "
            "the log's checkpoint key (`checkpoint_key` in /v1/ledger/head) and cosigned "
            "(tlog-cosignature/v1) by the witnesses that have cosigned it.",
            "content": {"text/plain; charset=utf-8": {"schema": {"type": "string"}}},
        }
    },
)
async def checkpoint(
    backends: BackendsDep,
    cosignatures: Annotated[
        int,
        Query(
            ge=1,
            le=100,
            description="Prefer the largest checkpoint cosigned by at least this many "
            "witnesses (a reader's quorum); else the most cosigned one.",
        ),
    ] = 1,
) -> Response:
    """The log's C2SP checkpoint: the largest one its witnesses cosigned, else the latest."""
    witnessing = backends.witnessing
    cosigned = witnessing.cosigned_note(cosignatures) if witnessing else None
    if cosigned is not None:
        return Response(cosigned, media_type="text/plain; charset=utf-8")
    block = await run_in_threadpool(backends.ledger.head)
    signer = backends.checkpoint_signer
    note = sign_checkpoint(checkpoint_of(block, signer.name), signer)
    return Response(note, media_type="text/plain; charset=utf-8")


@router.get("/entries", response_model=EntryPage, responses=problem_responses(401, 403))
async def entries(mirror: MirrorDep, start: PageStart = 0, limit: PageLimit = 100) -> EntryPage:
    """Log entries from `start`, in order, for mirrors and offline verification."""
    found = await run_in_threadpool(mirror.backends.ledger.entries, start, limit)
    page = [
        EntryOut(index=e.index, block=e.block, tx=SignedTransaction.model_validate(e.tx.to_json()))
        for e in found
    ]
    next_start = start + len(page) if len(page) == limit else None
    return EntryPage(entries=page, next_start=next_start)


@router.get("/blocks", response_model=BlockPage, responses=problem_responses(401, 403))
async def blocks(mirror: MirrorDep, start: PageStart = 0, limit: PageLimit = 100) -> BlockPage:
    """Signed blocks (tree heads) from height `start`, in order."""
    found = await run_in_threadpool(mirror.backends.ledger.blocks, start, limit)
    next_start = start + len(found) if len(found) == limit else None
    return BlockPage(blocks=[tree_head_out(b) for b in found], next_start=next_start)


@router.get("/consistency", response_model=ConsistencyProof)
async def consistency(
    backends: BackendsDep,
    old_size: Annotated[int, Query(ge=1, le=2**53)],
    new_size: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> ConsistencyProof:
    """Proof that the tree of `old_size` entries is a prefix of the tree of `new_size`."""
    size = new_size if new_size is not None else backends.ledger.tree_size()
    if old_size > size:
        raise NotFound(f"no consistency proof from {old_size} to {size} entries")
    proof = await run_in_threadpool(backends.ledger.consistency_proof, old_size, size)
    return ConsistencyProof(old_size=old_size, new_size=size, proof=[p.hex() for p in proof])
