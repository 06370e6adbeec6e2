"""RFC 9162 inclusion and consistency proofs and signed tree heads, checked with the
envelope alone.

`verify_inclusion` follows RFC 9162 §2.1.3.2 after checking every precondition (index
below size, 32-byte hashes, the exact proof length for that index and size), as the
transparency-dev/merkle verifier does; `verify_consistency` follows §2.1.4.2.
`tests/client/test_transactions.py` runs both over the transparency-dev vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from envelope import VerifyKey, canonical_json

HASH_LEN = 32
_SIGNED_FIELDS = ("height", "previous_hash", "tree_size", "root", "timestamp")


class ProofInvalid(ValueError):
    """The proof does not show the leaf under the root (the message says why)."""


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofInvalid unless *proof* leads from *leaf* at *index* of a *size*-leaf tree
    to *root*."""
    if not 0 <= index < size:
        raise ProofInvalid(f"leaf index {index} is outside a tree of {size} leaves")
    if len(leaf) != HASH_LEN or len(root) != HASH_LEN:
        raise ProofInvalid("the leaf and root hashes must be 32 bytes")
    if any(len(element) != HASH_LEN for element in proof):
        raise ProofInvalid("every proof element must be 32 bytes")
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise ProofInvalid(
            f"a proof for leaf {index} of {size} has {inner + border} elements, not {len(proof)}"
        )
    computed = leaf
    for position, sibling in enumerate(proof):
        if position < inner and not (index >> position) & 1:
            computed = node_hash(computed, sibling)
        else:
            computed = node_hash(sibling, computed)
    if computed != root:
        raise ProofInvalid(
            f"the proof for leaf {index} of {size} leads to {computed.hex()}, not {root.hex()}"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofInvalid unless *proof* shows that the tree of *old_size* leaves with
    *old_root* is a prefix of the tree of *new_size* leaves with *new_root* (§2.1.4.2)."""
    if not 0 < old_size <= new_size:
        raise ProofInvalid(f"no consistency proof from {old_size} to {new_size} leaves")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ProofInvalid(f"two trees of {old_size} leaves must have one root, no proof")
        return
    if len(old_root) != HASH_LEN or len(new_root) != HASH_LEN:
        raise ProofInvalid("the root hashes must be 32 bytes")
    if any(len(element) != HASH_LEN for element in proof):
        raise ProofInvalid("every proof element must be 32 bytes")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a complete subtree: the old root starts the path
        path.insert(0, old_root)
    if not path:
        raise ProofInvalid("an empty consistency proof")
    first, second = old_size - 1, new_size - 1
    while first & 1:
        first >>= 1
        second >>= 1
    old_hash = new_hash = path[0]
    for sibling in path[1:]:
        if second == 0:
            raise ProofInvalid("the consistency proof is longer than the path to the new root")
        if first & 1 or first == second:
            old_hash = node_hash(sibling, old_hash)
            new_hash = node_hash(sibling, new_hash)
            while not first & 1 and first != 0:
                first >>= 1
                second >>= 1
        else:
            new_hash = node_hash(new_hash, sibling)
        first >>= 1
        second >>= 1
    if second != 0:
        raise ProofInvalid("the consistency proof is shorter than the path to the new root")
    if old_hash != old_root or new_hash != new_root:
        raise ProofInvalid(
            f"the consistency proof does not join the roots of {old_size} and {new_size} leaves"
        )


def tree_head_header(head: dict[str, Any]) -> dict[str, Any]:
    """What the ledger key signs of a tree head: everything but the signature."""
    return {name: head[name] for name in _SIGNED_FIELDS}


def verify_tree_head(head: dict[str, Any], signature: bytes, ledger_key: VerifyKey) -> None:
    """Raise envelope.InvalidSignature unless *ledger_key* signed this tree head."""
    ledger_key.verify_bytes(canonical_json(tree_head_header(head)), signature)
