"""RFC 9162 Merkle proofs: transparency-dev/merkle vectors, our own corruptions, and
proofs made from stored subtree hashes agreeing with the RFC's recursive definitions."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.errors import ProofError
from ledger.wire.merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion

VECTORS = Path(__file__).parent.parent / "vectors" / "transparency-dev-merkle"


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).glob("*/*.json"))
    assert files, f"no {kind} vectors under {VECTORS}"
    return [pytest.param(json.loads(f.read_text()), id=f"{f.parent.name}/{f.stem}") for f in files]


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in case["proof"] or []]


@pytest.mark.parametrize("case", _cases("inclusion"))
def test_inclusion_vector(case: dict[str, Any]) -> None:
    def run() -> None:
        verify_inclusion(
            case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case),
            _b64(case["root"]),
        )  # fmt: skip

    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("case", _cases("consistency"))
def test_consistency_vector(case: dict[str, Any]) -> None:
    def run() -> None:
        verify_consistency(
            case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case)
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


# --- reference definitions straight from RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 -------------


def _mth(leaves: list[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def _path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


def _leaves(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def _lookup_for(n: int) -> Callable[[int, int], bytes]:
    nodes = merkle.nodes_from_leaf_hashes(leaf_hash(x) for x in _leaves(n))
    return lambda level, index: nodes[(level, index)]


@pytest.mark.parametrize("n", [*range(1, 34), 100, 127, 128, 129])
def test_root_agrees_with_rfc_definition(n: int) -> None:
    leaves = _leaves(n)
    expected = _mth(leaves)
    assert merkle.root_from_leaf_hashes([leaf_hash(x) for x in leaves]) == expected
    assert merkle.root_from_nodes(n, _lookup_for(n)) == expected
    lookup = _lookup_for(n)
    assert merkle.root_from_frontier([lookup(*f) for f in merkle.frontier_nodes(n)]) == expected


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33])
def test_inclusion_proofs_from_nodes_match_rfc_and_verify(n: int) -> None:
    leaves = _leaves(n)
    lookup = _lookup_for(n)
    for size in range(1, n + 1):
        root = _mth(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, lookup)
            assert proof == _path(index, leaves[:size])
            assert len(merkle.proof_nodes_inclusion(index, size)) <= 2 * size.bit_length()
            verify_inclusion(index, size, leaf_hash(leaves[index]), proof, root)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 9, 17, 33])
def test_consistency_proofs_from_nodes_match_rfc_and_verify(n: int) -> None:
    leaves = _leaves(n)
    lookup = _lookup_for(n)
    for new in range(1, n + 1):
        for old in range(1, new + 1):
            proof = merkle.consistency_proof(old, new, lookup)
            assert proof == _subproof(old, leaves[:new], True)
            verify_consistency(old, new, _mth(leaves[:old]), _mth(leaves[:new]), proof)


# --- corruption generators: every mutation of a valid proof must fail -------------------


def _flip_each_bit_of_each_element(proof: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    for i, element in enumerate(proof):
        for bit in (0, 7, 100, 255):
            mutated = bytearray(element)
            mutated[bit // 8] ^= 1 << (bit % 8)
            yield f"element {i} bit {bit}", [*proof[:i], bytes(mutated), *proof[i + 1 :]]


def _structural_mutations(proof: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    yield from _flip_each_bit_of_each_element(proof)
    yield "element added at end", [*proof, bytes(32)]
    yield "element added at start", [bytes(32), *proof]
    for i in range(len(proof)):
        yield f"element {i} removed", proof[:i] + proof[i + 1 :]
    yield "garbage appended", [*proof, b"garbage"]
    if proof:
        yield "last element truncated", [*proof[:-1], proof[-1][:31]]
        yield "elements reversed", list(reversed(proof)) if len(proof) > 1 else [bytes(32)]


def _inclusion_corruptions(
    index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes
) -> Iterator[tuple[str, tuple[int, int, bytes, list[bytes], bytes]]]:
    for delta in (-1, 1):
        yield f"index {delta:+d}", (index + delta, size, leaf, proof, root)
    yield "size x2", (index, size * 2, leaf, proof, root)
    yield "size /2", (index, size // 2, leaf, proof, root)
    yield "wrong leaf", (index, size, leaf_hash(b"other"), proof, root)
    yield "wrong root", (index, size, leaf, proof, leaf_hash(b"other root"))
    for name, mutated in _structural_mutations(proof):
        yield name, (index, size, leaf, mutated, root)


@pytest.mark.parametrize("size", [1, 2, 3, 6, 7, 8, 13, 32])
def test_every_inclusion_corruption_fails(size: int) -> None:
    leaves = _leaves(size)
    lookup = _lookup_for(size)
    root = _mth(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, lookup)
        leaf = leaf_hash(leaves[index])
        for name, args in _inclusion_corruptions(index, size, leaf, proof, root):
            if name == "elements reversed" and len(set(proof)) < 2:
                continue
            try:
                verify_inclusion(*args)
            except ProofError:
                continue
            pytest.fail(f"corruption {name!r} of leaf {index} of {size} verified")


@pytest.mark.parametrize(("old", "new"), [(1, 2), (2, 3), (3, 7), (4, 8), (5, 13), (7, 32)])
def test_every_consistency_corruption_fails(old: int, new: int) -> None:
    leaves = _leaves(new)
    lookup = _lookup_for(new)
    old_root, new_root = _mth(leaves[:old]), _mth(leaves[:new])
    proof = merkle.consistency_proof(old, new, lookup)
    verify_consistency(old, new, old_root, new_root, proof)
    mutations: list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]] = [
        ("old -1", (old - 1, new, old_root, new_root, proof)),
        ("old +1", (old + 1, new, old_root, new_root, proof)),
        ("new x2", (old, new * 2, old_root, new_root, proof)),
        ("old /2", (old // 2, new, old_root, new_root, proof)),
        ("roots swapped", (old, new, new_root, old_root, proof)),
        ("old root wrong", (old, new, leaf_hash(b"x"), new_root, proof)),
        ("new root wrong", (old, new, old_root, leaf_hash(b"x"), proof)),
    ]
    mutations += [(n, (old, new, old_root, new_root, p)) for n, p in _structural_mutations(proof)]
    for name, args in mutations:
        if name == "elements reversed" and len(set(proof)) < 2:
            continue
        try:
            verify_consistency(*args)
        except ProofError:
            continue
        pytest.fail(f"corruption {name!r} of {old}->{new} verified")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: verify_inclusion(3, 3, bytes(32), [], bytes(32)), "outside a tree"),
        (lambda: verify_inclusion(0, 0, bytes(32), [], bytes(32)), "outside a tree"),
        (lambda: verify_inclusion(0, 1, b"short", [], bytes(32)), "leaf hash must be"),
        (lambda: verify_inclusion(0, 2, bytes(32), [b"x"], bytes(32)), "element 0"),
        (lambda: verify_inclusion(0, 2, bytes(32), [], bytes(32)), "has 1 elements"),
        (lambda: verify_consistency(0, 1, bytes(32), bytes(32), []), "0 < old size"),
        (lambda: verify_consistency(2, 1, bytes(32), bytes(32), []), "0 < old size"),
        (lambda: verify_consistency(1, 2, bytes(32), bytes(32), []), "cannot be empty"),
        (lambda: verify_consistency(3, 4, bytes(32), bytes(32), [bytes(32)]), "has 3"),
        (lambda: verify_consistency(2, 2, bytes(32), bytes(32), [bytes(32)]), "empty"),
    ],
)
def test_precondition_messages(call: Callable[[], None], message: str) -> None:
    with pytest.raises(ProofError, match=message):
        call()


def test_completed_nodes_count_is_amortised_constant() -> None:
    total = sum(len(merkle.completed_nodes(i)) for i in range(1024))
    assert total == 1023  # a perfect tree of 1024 leaves has 1023 interior nodes
