"""Blocks (signed tree heads), receipts, and the JSON export formats of entries and blocks.

A block is {height, previous_hash, tree_size, root, timestamp}, signed by the ledger key
over its canonical JSON: it is both a link of the hash chain (previous_hash is the hash of
the previous signed block) and a signed tree head of the Merkle log. Hashes are lowercase
hex, signatures standard base64.

Export formats (what `/v1/ledger/entries` and `/v1/ledger/blocks` serve, and what
`ledger.verify` reads):

    entry: {"index": 0, "block": 0, "tx": {type, body, signer, signature}}
    block: {"height": 0, "previous_hash": hex, "tree_size": 1, "root": hex,
            "timestamp": "...Z", "signature": base64}
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from envelope import EnvelopeError, SigningKey, VerifyKey, b64decode, b64encode
from ledger.errors import ProofError
from ledger.wire.encoding import canonical
from ledger.wire.merkle import verify_inclusion
from ledger.wire.transactions import Transaction

GENESIS_PREVIOUS_HASH = bytes(32)


@dataclass(frozen=True, slots=True)
class Block:
    """A signed tree head that is also a link in the chain of blocks."""

    height: int
    previous_hash: bytes
    tree_size: int
    root: bytes
    timestamp: str
    signature: bytes

    def header(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "previous_hash": self.previous_hash.hex(),
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "signature": b64encode(self.signature)}

    @property
    def block_hash(self) -> bytes:
        """SHA-256 of the canonical JSON of the signed block; the next block links to it."""
        return hashlib.sha256(canonical(self.to_json())).digest()

    @classmethod
    def signed(
        cls,
        key: SigningKey,
        *,
        height: int,
        previous_hash: bytes,
        tree_size: int,
        root: bytes,
        timestamp: str,
    ) -> Block:
        unsigned = cls(height, previous_hash, tree_size, root, timestamp, b"")
        return cls(
            height, previous_hash, tree_size, root, timestamp,
            key.sign_bytes(canonical(unsigned.header())),
        )  # fmt: skip

    def verify_signature(self, key: VerifyKey) -> None:
        """Raise envelope.InvalidSignature unless the ledger key signed this header."""
        key.verify_bytes(canonical(self.header()), self.signature)

    @classmethod
    def from_json(cls, data: Any) -> Block:
        if not isinstance(data, dict):
            raise ValueError("a block is a JSON object")
        try:
            return cls(
                int(data["height"]),
                bytes.fromhex(data["previous_hash"]),
                int(data["tree_size"]),
                bytes.fromhex(data["root"]),
                str(data["timestamp"]),
                b64decode(data["signature"], what="block signature"),
            )
        except (KeyError, TypeError, ValueError, EnvelopeError) as exc:
            raise ValueError(f"malformed block: {exc}") from exc


SignedTreeHead = Block


class Receipt:
    """Proof that a transaction is durably on the log: where, under which signed head.

    The inclusion proof may be given as a function that makes it: the committer then
    hands out receipts at once and each caller's thread builds its own proof on first use.
    """

    __slots__ = ("_make_proof", "_proof", "index", "tree_head", "tx_hash")

    def __init__(
        self,
        index: int,
        tx_hash: str,
        tree_head: Block,
        inclusion_proof: Sequence[bytes] | Callable[[], Sequence[bytes]],
    ) -> None:
        self.index = index
        self.tx_hash = tx_hash
        self.tree_head = tree_head
        if callable(inclusion_proof):
            self._make_proof: Callable[[], Sequence[bytes]] | None = inclusion_proof
            self._proof: tuple[bytes, ...] | None = None
        else:
            self._make_proof = None
            self._proof = tuple(inclusion_proof)

    @property
    def inclusion_proof(self) -> tuple[bytes, ...]:
        if self._proof is None:
            assert self._make_proof is not None
            self._proof = tuple(self._make_proof())
            self._make_proof = None
        return self._proof

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Receipt) and (
            other.index,
            other.tx_hash,
            other.tree_head,
            other.inclusion_proof,
        ) == (self.index, self.tx_hash, self.tree_head, self.inclusion_proof)

    def __hash__(self) -> int:
        return hash((self.index, self.tx_hash))

    def __repr__(self) -> str:
        size = self.tree_head.tree_size
        return f"Receipt(index={self.index}, tx_hash={self.tx_hash}, tree_size={size})"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tx_hash": self.tx_hash,
            "tree_head": self.tree_head.to_json(),
            "inclusion_proof": [p.hex() for p in self.inclusion_proof],
        }

    def verify(self, ledger_key: VerifyKey, tx: Transaction | None = None) -> None:
        """Check the tree head's signature and the inclusion proof (and, given *tx*, that
        the receipt is for it). Raises ProofError or envelope.InvalidSignature."""
        if tx is not None and tx.tx_hash != self.tx_hash:
            raise ProofError("the receipt is for another transaction")
        self.tree_head.verify_signature(ledger_key)
        verify_inclusion(
            self.index,
            self.tree_head.tree_size,
            bytes.fromhex(self.tx_hash),
            self.inclusion_proof,
            self.tree_head.root,
        )


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry as exported: its index, its block height and the signed transaction."""

    index: int
    block: int
    tx: Transaction

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "block": self.block, "tx": self.tx.to_json()}

    @classmethod
    def from_json(cls, data: Any) -> Entry:
        if not isinstance(data, dict) or not {"index", "block", "tx"} <= data.keys():
            raise ValueError("an entry is {index, block, tx}")
        return cls(int(data["index"]), int(data["block"]), Transaction.from_json(data["tx"]))
