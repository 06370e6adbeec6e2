"""The client's own checks of what a gateway hands out: receipts, record transactions.

A receipt (an inclusion proof under a signed tree head) proves a transaction is on the
ledger only when (1) the tree head's signature verifies with the trusted ledger key,
(2) the proof leads from the transaction's leaf hash at its index to the head's root, and
(3) that leaf hash is the hash of the transaction the client looks at. Each failure raises
`VerificationFailed` naming which.
"""

from __future__ import annotations

from typing import Any

from ehrgate.errors import VerificationFailed
from ehrgate.models import Receipt, Record
from envelope import EnvelopeError, InvalidSignature, VerifyKey
from ledger.blocks import Block
from ledger.errors import LedgerError
from ledger.merkle import verify_inclusion
from ledger.transactions import Transaction


def tree_head_block(receipt: Receipt) -> Block:
    try:
        return Block.from_json(receipt.tree_head.to_json())
    except ValueError as exc:
        raise VerificationFailed(f"the signed tree head is malformed: {exc}") from exc


def verify_receipt(receipt: Receipt, ledger_key: VerifyKey, *, tx_hash: str | None) -> None:
    """Check the head's signature, the inclusion proof and (given) the leaf hash."""
    if tx_hash is not None and receipt.tx_hash != tx_hash:
        raise VerificationFailed(f"the receipt is for transaction {receipt.tx_hash}, not {tx_hash}")
    block = tree_head_block(receipt)
    try:
        block.verify_signature(ledger_key)
    except (InvalidSignature, EnvelopeError) as exc:
        raise VerificationFailed(
            f"the tree head at height {block.height} is not signed by the trusted ledger key"
        ) from exc
    try:
        proof = [bytes.fromhex(node) for node in receipt.inclusion_proof]
        leaf = bytes.fromhex(receipt.tx_hash)
    except ValueError as exc:
        raise VerificationFailed("the inclusion proof is not hexadecimal hashes") from exc
    try:
        verify_inclusion(receipt.index, block.tree_size, leaf, proof, block.root)
    except (LedgerError, ValueError) as exc:
        raise VerificationFailed(
            f"the inclusion proof of entry {receipt.index} does not lead to the signed root "
            f"of the {block.tree_size}-entry tree: {exc}"
        ) from exc


_RECORD_FIELDS = (
    "record_id",
    "pseudonym",
    "category",
    "body_sha256",
    "size",
    "capsule_sha256",
    "content_type",
    "created_at",
)


def record_transaction(data: Any, record: Record) -> Transaction:
    """The signed `record` transaction the gateway returned, checked against *record*."""
    try:
        tx = Transaction.from_json(data)
    except (LedgerError, ValueError, TypeError, KeyError) as exc:
        raise VerificationFailed(f"the record's transaction is malformed: {exc}") from exc
    if tx.type != "record":
        raise VerificationFailed(f"the record's transaction is a {tx.type!r}, not a record")
    for name in _RECORD_FIELDS:
        if tx.body.get(name) != getattr(record, name):
            raise VerificationFailed(
                f"the record's {name} differs from the one in its signed ledger transaction"
            )
    if list(record.locators) != tx.body.get("locators"):
        raise VerificationFailed("the record's locators differ from its ledger transaction")
    if tx.signer != record.uploader or tx.body.get("on_behalf_of") != record.on_behalf_of:
        raise VerificationFailed("the record's uploader differs from its ledger transaction")
    return tx
