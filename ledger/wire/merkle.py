"""RFC 9162 Merkle hashing and proof verification: what a client checks, over bytes.

A leaf hash is SHA-256(0x00 ‖ data), an interior node SHA-256(0x01 ‖ left ‖ right); hashes
are 32 bytes. Proofs are verified exactly as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
(consistency) describe, after every precondition is checked (index below size, hash
lengths, the exact proof length for the sizes), as the transparency-dev/merkle verifier
does, so that a malformed proof fails with a message that says what is wrong. Making
proofs from stored subtree hashes is the server's part, in `ledger.merkle`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger.errors import ProofError

HASH_LEN = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of nothing."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def check_sizes_for_inclusion(index: int, size: int) -> None:
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")


def check_sizes_for_consistency(old: int, new: int) -> None:
    if not 0 < old <= new:
        raise ProofError(f"a consistency proof needs 0 < old size <= new size, got {old} and {new}")


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_LEN:
        raise ProofError(f"{what} must be {HASH_LEN} bytes, got {len(value)}")


def _check_proof_hashes(proof: Sequence[bytes], kind: str) -> None:
    for position, element in enumerate(proof):
        if len(element) != HASH_LEN:
            raise ProofError(
                f"{kind} proof element {position} must be {HASH_LEN} bytes, got {len(element)}"
            )


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof (RFC 9162 §2.1.3.2), after its preconditions."""
    check_sizes_for_inclusion(index, size)
    _check_hash(leaf, "the leaf hash")
    _check_proof_hashes(proof, "inclusion")
    # The exact proof length follows from index and size: the bits of the path where a
    # sibling exists (inner, below the point where index and size-1 diverge) plus the
    # left-side siblings above it (border, the set bits of index above that point).
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise ProofError(
            f"an inclusion proof for leaf {index} of {size} has {inner + border} elements, "
            f"got {len(proof)}"
        )
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless *proof* shows leaf hash *leaf* at *index* of the tree *root*."""
    _check_hash(root, "the root hash")
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof for leaf {index} of {size} leads to root {computed.hex()}, "
            f"not {root.hex()}"
        )


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise ProofError unless *proof* shows the tree (*old*, *old_root*) is a prefix of
    (*new*, *new_root*), following RFC 9162 §2.1.4.2."""
    check_sizes_for_consistency(old, new)
    if old == new:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"the roots of two trees of {old} leaves differ")
        return
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    _check_proof_hashes(proof, "consistency")
    _check_consistency_length(old, new, len(proof))
    path = list(proof)
    # If old is an exact power of two, the old root itself starts the path.
    if old & (old - 1) == 0:
        path.insert(0, old_root)
    old_hash, new_hash = _consistency_roots(old, new, path)
    if old_hash != old_root:
        raise ProofError(f"consistency proof does not lead to the old root of {old} leaves")
    if new_hash != new_root:
        raise ProofError(f"consistency proof does not lead to the new root of {new} leaves")


def _check_consistency_length(old: int, new: int, length: int) -> None:
    """The exact length: the inclusion path of leaf old-1 in new, less the levels where
    old-1 sits in a complete left subtree shared by both trees, plus the seed when old is
    not a power of two (when it is, the old root itself is the seed)."""
    if length == 0:
        raise ProofError(f"a consistency proof from {old} to {new} cannot be empty")
    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = bin((old - 1) >> inner).count("1")
    shift = (old & -old).bit_length() - 1
    expected = (0 if old & (old - 1) == 0 else 1) + inner - shift + border
    if length != expected:
        raise ProofError(
            f"a consistency proof from {old} to {new} has {expected} elements, got {length}"
        )


def _consistency_roots(old: int, new: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """The old and new roots that the seeded *path* leads to (RFC 9162 §2.1.4.2, steps 4-7)."""
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the new root")
    return fr, sr
