"""The client's own checks of what a gateway hands out: receipts, record transactions.

A receipt (an inclusion proof under a signed tree head) proves a transaction is on the
ledger only when (1) the tree head's signature verifies with the trusted ledger key,
(2) the proof leads from the transaction's leaf hash at its index to the head's root, and
(3) that leaf hash is the hash of the transaction the client looks at. Each failure raises
`VerificationFailed` naming which. A record is checked member by member against its signed
transaction, over the members `ledger.wire.shapes.RECORD_TX` gives a record's body.
"""

from __future__ import annotations

from typing import Any

from ehrgate.errors import VerificationFailed
from ehrgate.models import Receipt, Record, TreeHead
from envelope import EnvelopeError, InvalidSignature, VerifyKey
from ledger.errors import LedgerError, ProofError
from ledger.wire.merkle import verify_inclusion
from ledger.wire.shapes import RECORD_TX
from ledger.wire.transactions import Transaction


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise VerificationFailed(f"{what} is not hexadecimal") from exc


def check_tree_head(head: TreeHead, ledger_key: VerifyKey) -> None:
    """Raise VerificationFailed unless the trusted ledger key signed *head*."""
    try:
        head.block().verify_signature(ledger_key)
    except (InvalidSignature, EnvelopeError, ValueError) as exc:
        raise VerificationFailed(
            f"the tree head at height {head.height} is not signed by the trusted ledger key"
        ) from exc


def verify_receipt(receipt: Receipt, ledger_key: VerifyKey, *, tx_hash: str | None) -> None:
    """Check the head's signature, the inclusion proof and (given) the leaf hash."""
    if tx_hash is not None and receipt.tx_hash != tx_hash:
        raise VerificationFailed(f"the receipt is for transaction {receipt.tx_hash}, not {tx_hash}")
    head = receipt.tree_head
    check_tree_head(head, ledger_key)
    proof = [_hex(node, "the inclusion proof") for node in receipt.inclusion_proof]
    try:
        verify_inclusion(
            receipt.index,
            head.tree_size,
            _hex(receipt.tx_hash, "the leaf hash"),
            proof,
            _hex(head.root, "the root"),
        )
    except ProofError as exc:
        raise VerificationFailed(
            f"the inclusion proof of entry {receipt.index} does not lead to the signed root "
            f"of the {head.tree_size}-entry tree: {exc}"
        ) from exc


def record_transaction(data: Any, record: Record) -> Transaction:
    """The signed `record` transaction the gateway returned, checked against *record*."""
    try:
        tx = Transaction.from_json(data)
    except LedgerError as exc:
        raise VerificationFailed(f"the record's transaction is malformed: {exc}") from exc
    if tx.type != "record":
        raise VerificationFailed(f"the record's transaction is a {tx.type!r}, not a record")
    for name in RECORD_TX.names:
        shown = getattr(record, name)
        if tx.body.get(name) != (list(shown) if isinstance(shown, tuple) else shown):
            raise VerificationFailed(
                f"the record's {name} differs from the one in its signed ledger transaction"
            )
    if tx.signer != record.uploader:
        raise VerificationFailed("the record's uploader differs from its ledger transaction")
    return tx
