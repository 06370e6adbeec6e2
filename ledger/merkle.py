"""Making RFC 9162 Merkle proofs and roots from stored complete-subtree hashes.

Pure functions over bytes: no database, no rows. Proofs are *made* from a lookup of stored
complete-subtree hashes (`NodeLookup`): a perfect subtree covering leaves
[i·2^level, (i+1)·2^level) is addressed as (level, i). Making an inclusion or consistency
proof needs O(log n) of these, never the leaves themselves. `proof_nodes_*` name the nodes
a proof needs so that a store can fetch them in one query. Hashing and *verifying* proofs
is the protocol's part, in `ledger.wire.merkle`, which a client uses alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ledger.wire.merkle import (
    EMPTY_ROOT,
    check_sizes_for_consistency,
    check_sizes_for_inclusion,
    node_hash,
)

Node = tuple[int, int]
"""A perfect subtree: (level, index) covers leaves [index << level, (index + 1) << level)."""

NodeLookup = Callable[[int, int], bytes]


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


def proof_nodes_inclusion(index: int, size: int) -> list[Node]:
    """Every stored node needed to make the inclusion proof of leaf *index* in *size* leaves."""
    check_sizes_for_inclusion(index, size)
    return [n for s, e in _inclusion_ranges(index, size) for n in _range_nodes(s, e)]


def proof_nodes_consistency(old: int, new: int) -> list[Node]:
    """Every stored node needed to make the consistency proof from *old* to *new* leaves."""
    check_sizes_for_consistency(old, new)
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
    check_sizes_for_inclusion(index, size)
    return [_range_hash(s, e, lookup, memo) for s, e in _inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, lookup: NodeLookup) -> list[bytes]:
    """PROOF(old, D[0:new]) made from stored subtree hashes."""
    check_sizes_for_consistency(old, new)
    return [_range_hash(s, e, lookup) for s, e in _consistency_ranges(old, new)]


def root_from_nodes(size: int, lookup: NodeLookup) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, lookup)


def nodes_from_leaf_hashes(hashes: Iterable[bytes]) -> dict[Node, bytes]:
    """Every complete-subtree hash of a tree, keyed (level, index); for tests and replays."""
    nodes: dict[Node, bytes] = {}
    for index, h in enumerate(hashes):
        nodes[(0, index)] = h
        for level, i in completed_nodes(index):
            nodes[(level, i)] = node_hash(nodes[(level - 1, 2 * i)], nodes[(level - 1, 2 * i + 1)])
    return nodes
