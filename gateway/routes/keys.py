"""Scoped record keys: the ledger's categories, a patient's publication of its (category,
month) public keys, and the published keys with the signed entries that carry them.

Published keys are public (they are on the ledger, like the record public key): any
authenticated caller may read them. Only the patient publishes its own (a `publish_keys`
signed by it; the ledger refuses any other signer)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from gateway.deps import CallerDep
from gateway.errors import NotFound, ValidationFailed
from gateway.models import (
    Category,
    EntryOut,
    Pseudonym,
    ReceiptOut,
    SignedTransaction,
    StrictModel,
    problem_responses,
)
from gateway.refusals import audited
from gateway.scoped_keys import find_key, no_published_key
from gateway.transactions import parse_signed, submit
from gateway.views import receipt_out
from ledger import PublishedKey

router = APIRouter(prefix="/v1", tags=["keys"], responses=problem_responses(401, 403))

Period = Annotated[
    str,
    Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="A UTC month, YYYY-MM."),
]


class CategoryList(StrictModel):
    categories: list[str]


class PublishedKeyOut(StrictModel):
    pseudonym: str
    category: str
    period: str
    public_key_sha256: str
    entry_index: int
    generation: int = 1


class PublishedKeyList(StrictModel):
    pseudonym: str
    keys: list[PublishedKeyOut]


class KeysPublished(StrictModel):
    keys: list[PublishedKeyOut]
    receipt: ReceiptOut


class PublishedKeyProof(StrictModel):
    """A published key with the patient's signed publish_keys entry and its receipt."""

    key: PublishedKeyOut
    entry: EntryOut
    receipt: ReceiptOut


def _out(key: PublishedKey) -> PublishedKeyOut:
    return PublishedKeyOut(
        pseudonym=key.pseudonym,
        category=key.category,
        period=key.period,
        public_key_sha256=key.public_key_sha256,
        entry_index=key.entry_index,
        generation=key.generation,
    )


@router.get("/categories", response_model=CategoryList)
async def categories(caller: CallerDep) -> CategoryList:
    """The record categories this ledger accepts."""
    return CategoryList(categories=caller.backends.ledger.categories.names())


@router.post(
    "/patients/{pseudonym}/keys",
    response_model=KeysPublished,
    status_code=201,
    responses=problem_responses(409),
)
async def publish_keys(
    pseudonym: Pseudonym, transaction: SignedTransaction, caller: CallerDep
) -> KeysPublished:
    """Publish (category, month) record public keys (a `publish_keys` signed by the patient)."""
    async with audited(caller, "publish_keys") as scope:
        scope.about(pseudonym)
        tx = parse_signed(transaction, expected_type="publish_keys", principal=caller.principal)
        if tx.body.get("pseudonym") != pseudonym:
            raise ValidationFailed("the transaction publishes keys of another pseudonym")
        receipt = await submit(caller.backends, caller.state.metrics, tx)
    ledger = caller.backends.ledger
    keys = [
        ledger.published_key(pseudonym, str(item["category"]), str(item["period"]))
        for item in tx.body["keys"]
    ]
    return KeysPublished(
        keys=[_out(key) for key in keys if key is not None], receipt=receipt_out(receipt)
    )


@router.get("/patients/{pseudonym}/keys", response_model=PublishedKeyList)
async def list_keys(pseudonym: Pseudonym, caller: CallerDep) -> PublishedKeyList:
    """Every (category, month) key the patient published (without the keys themselves)."""
    keys = await run_in_threadpool(caller.backends.ledger.published_keys_of, pseudonym)
    return PublishedKeyList(pseudonym=pseudonym, keys=[_out(key) for key in keys])


@router.get(
    "/patients/{pseudonym}/keys/{category}/{period}",
    response_model=PublishedKeyProof,
    responses=problem_responses(404),
)
async def get_key(
    pseudonym: Pseudonym, category: Category, period: Period, caller: CallerDep
) -> PublishedKeyProof:
    """A published key with the patient's signed entry and its receipt, to check it by."""
    ledger = caller.backends.ledger
    found = await run_in_threadpool(find_key, ledger, pseudonym, category, period)
    if found is None:
        raise NotFound(no_published_key(pseudonym, category, period))
    receipt = await run_in_threadpool(ledger.receipt, found.entry.index)
    return PublishedKeyProof(
        key=_out(found.published),
        entry=EntryOut(
            index=found.entry.index,
            block=found.entry.block,
            tx=SignedTransaction.model_validate(found.entry.tx.to_json()),
        ),
        receipt=receipt_out(receipt),
    )
