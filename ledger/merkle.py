"""RFC 9162 Merkle tree hashing, proof construction and proof verification, over bytes.

Everything here is a pure function: no database, no rows. Hashes are 32-byte SHA-256
values; a leaf hash is SHA-256(0x00 ‖ data), an interior node SHA-256(0x01 ‖ left ‖ right).

Proofs are *made* from a lookup of stored complete-subtree hashes (`NodeLookup`): a perfect
subtree covering leaves [i·2^level, (i+1)·2^level) is addressed as (level, i). Making an
inclusion or consistency proof needs O(log n) of these, never the leaves themselves.
`proof_nodes_*` name the nodes a proof needs so that a store can fetch them in one query.

Proofs are *verified* exactly as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency)
describe, after checking every precondition (index < size, hash lengths, exact proof
length), so a malformed proof fails with a message saying what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from ledger.errors import ProofError

HASH_LEN = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A perfect subtree: (level, index) covers leaves [index << level, (index + 1) << level)."""

NodeLookup = Callable[[int, int], bytes]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162: the largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from the leaf hashes, by folding complete subtrees (O(n) time, O(log n) space)."""
    stack: list[tuple[int, bytes]] = []  # (size, hash) of complete subtrees, left to right
    for h in hashes:
        size, current = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            current = node_hash(left, current)
            size += left_size
        stack.append((size, current))
    return root_from_frontier([h for _, h in stack])


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of a tree given its complete subtrees, largest (leftmost) first."""
    if not frontier:
        return EMPTY_ROOT
    current = frontier[-1]
    for left in reversed(frontier[:-1]):
        current = node_hash(left, current)
    return current


def frontier_nodes(size: int) -> list[Node]:
    """The complete subtrees whose concatenation is a tree of *size* leaves, left to right."""
    nodes: list[Node] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size & (1 << level):
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def completed_nodes(index: int) -> list[Node]:
    """The perfect subtrees (level ≥ 1) completed by appending leaf *index*."""
    nodes: list[Node] = []
    level, i = 0, index
    while i & 1:
        i >>= 1
        level += 1
        nodes.append((level, i))
    return nodes


def _range_nodes(start: int, end: int) -> list[Node]:
    """Nodes whose hashes determine MTH(D[start:end]), where start is aligned as the RFC's
    recursion guarantees (start is a multiple of the largest power of two ≤ end - start)."""
    size = end - start
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return [(level, start >> level)]
    k = _largest_power_of_two_below(size)
    return _range_nodes(start, start + k) + _range_nodes(start + k, end)


def _range_hash(
    start: int, end: int, lookup: NodeLookup, memo: dict[tuple[int, int], bytes] | None = None
) -> bytes:
    size = end - start
    if size & (size - 1) == 0:
        level = size.bit_length() - 1
        return lookup(level, start >> level)
    if memo is not None and (start, end) in memo:
        return memo[(start, end)]
    k = _largest_power_of_two_below(size)
    value = node_hash(
        _range_hash(start, start + k, lookup, memo), _range_hash(start + k, end, lookup, memo)
    )
    if memo is not None:
        memo[(start, end)] = value
    return value


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form PATH(index, D[0:size]), bottom first."""
    ranges: list[tuple[int, int]] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The subtree ranges whose hashes form PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1."""
    ranges: list[tuple[int, int]] = []
    start, end, m, complete = 0, new, old, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                ranges.append((start, end))
            break
        k = _largest_power_of_two_below(size)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            m -= k
            complete = False
    ranges.reverse()
    return ranges


def _check_sizes_for_inclusion(index: int, size: int) -> None:
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size} leaves")


def _check_sizes_for_consistency(old: int, new: int) -> None:
    if not 0 < old <= new:
        raise ProofError(f"a consistency proof needs 0 < old size <= new size, got {old} and {new}")


def proof_nodes_inclusion(index: int, size: int) -> list[Node]:
    """Every stored node needed to make the inclusion proof of leaf *index* in *size* leaves."""
    _check_sizes_for_inclusion(index, size)
    return [n for s, e in _inclusion_ranges(index, size) for n in _range_nodes(s, e)]


def proof_nodes_consistency(old: int, new: int) -> list[Node]:
    """Every stored node needed to make the consistency proof from *old* to *new* leaves."""
    _check_sizes_for_consistency(old, new)
    return [n for s, e in _consistency_ranges(old, new) for n in _range_nodes(s, e)]


def inclusion_proof(
    index: int,
    size: int,
    lookup: NodeLookup,
    memo: dict[tuple[int, int], bytes] | None = None,
) -> list[bytes]:
    """PATH(index, D[0:size]) made from stored subtree hashes.

    *memo* may be shared by proofs in one tree: it keeps the hashes of the incomplete
    right-edge subtrees, which every proof of a batch needs again.
    """
    _check_sizes_for_inclusion(index, size)
    return [_range_hash(s, e, lookup, memo) for s, e in _inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, lookup: NodeLookup) -> list[bytes]:
    """PROOF(old, D[0:new]) made from stored subtree hashes."""
    _check_sizes_for_consistency(old, new)
    return [_range_hash(s, e, lookup) for s, e in _consistency_ranges(old, new)]


def root_from_nodes(size: int, lookup: NodeLookup) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, lookup)


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
    _check_sizes_for_inclusion(index, size)
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
    _check_sizes_for_consistency(old, new)
    if old == new:
        if proof:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError(f"the roots of two trees of {old} leaves differ")
        return
    _check_hash(old_root, "the old root hash")
    _check_hash(new_root, "the new root hash")
    _check_proof_hashes(proof, "consistency")
    if not proof:
        raise ProofError(f"a consistency proof from {old} to {new} cannot be empty")
    # Exact length: the inclusion path of leaf old-1 in new, less the levels where old-1
    # sits in a complete left subtree shared by both trees, plus the seed when old is
    # not a power of two (when it is, the old root itself is the seed).
    inner = ((old - 1) ^ (new - 1)).bit_length()
    border = bin((old - 1) >> inner).count("1")
    shift = (old & -old).bit_length() - 1
    expected = (0 if old & (old - 1) == 0 else 1) + inner - shift + border
    if len(proof) != expected:
        raise ProofError(
            f"a consistency proof from {old} to {new} has {expected} elements, got {len(proof)}"
        )
    path = list(proof)
    # If old is an exact power of two, the old root itself starts the path.
    if old & (old - 1) == 0:
        path.insert(0, old_root)
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
    if fr != old_root:
        raise ProofError(f"consistency proof does not lead to the old root of {old} leaves")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root of {new} leaves")


def nodes_from_leaf_hashes(hashes: Iterable[bytes]) -> dict[Node, bytes]:
    """Every complete-subtree hash of a tree, keyed (level, index); for tests and replays."""
    nodes: dict[Node, bytes] = {}
    for index, h in enumerate(hashes):
        nodes[(0, index)] = h
        for level, i in completed_nodes(index):
            nodes[(level, i)] = node_hash(nodes[(level - 1, 2 * i)], nodes[(level - 1, 2 * i + 1)])
    return nodes
