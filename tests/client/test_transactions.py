"""The SDK's own transaction builders and proof checks agree with the ledger's, and its
inclusion verifier passes the transparency-dev vectors and refuses their corruptions."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ehrgate import proofs
from ehrgate import transactions as client_tx
from envelope import IdentityKeys, InvalidSignature, PatientKeys, SigningKey
from ledger import builders, merkle
from ledger.blocks import Block
from ledger.transactions import Transaction as LedgerTransaction

VECTORS = Path(__file__).parent.parent / "vectors" / "transparency-dev-merkle" / "inclusion"
ADMIN = IdentityKeys.generate("admin", "admin")
DOCTOR = IdentityKeys.generate("dr-grey", "clinician")
PATIENT = PatientKeys.generate({"name": "Ana"})
P = PATIENT.pseudonym
T1, T2 = "2030-01-01T00:00:00.000000Z", "2030-02-01T00:00:00.000000Z"
SHA = "ab" * 32

Pair = tuple[Callable[[], client_tx.Transaction], Callable[[], LedgerTransaction]]
PAIRS: dict[str, Pair] = {
    "enroll": (
        lambda: client_tx.enroll(ADMIN, DOCTOR.public()),
        lambda: builders.enroll(ADMIN, DOCTOR.public()),
    ),
    "suspend": (
        lambda: client_tx.suspend(ADMIN, "dr-grey", "left"),
        lambda: builders.suspend(ADMIN, "dr-grey", "left"),
    ),
    "register_patient": (
        lambda: client_tx.register_patient(
            PATIENT.identity, P, PATIENT.patient_key.record_public_key().to_bytes()
        ),
        lambda: builders.register_patient(
            PATIENT.identity, P, PATIENT.patient_key.record_public_key().to_bytes()
        ),
    ),
    "grant": (
        lambda: client_tx.grant(
            PATIENT.identity,
            pseudonym=P,
            grantee="dr-grey",
            rights=["write", "read"],
            categories=["lab-results"],
            not_before=T1,
            not_after=T2,
            permission_id="p1",
        ),
        lambda: builders.grant(
            PATIENT.identity,
            pseudonym=P,
            grantee="dr-grey",
            rights=["write", "read"],
            categories=["lab-results"],
            not_before=T1,
            not_after=T2,
            permission_id="p1",
        ),
    ),
    "share grant": (
        lambda: client_tx.grant(
            PATIENT.identity,
            pseudonym=P,
            grantee="dr-grey",
            rights=["share"],
            categories="all",
            not_before=T1,
            not_after=T2,
            study_id="s",
            anonymise=True,
            permission_id="p2",
        ),
        lambda: builders.grant(
            PATIENT.identity,
            pseudonym=P,
            grantee="dr-grey",
            rights=["share"],
            categories="all",
            not_before=T1,
            not_after=T2,
            study_id="s",
            anonymise=True,
            permission_id="p2",
        ),
    ),
    "revoke": (
        lambda: client_tx.revoke(PATIENT.identity, pseudonym=P, permission_id="p1"),
        lambda: builders.revoke(PATIENT.identity, pseudonym=P, permission_id="p1"),
    ),
    "key_share": (
        lambda: client_tx.key_share(PATIENT.identity, pseudonym=P, grantee="d", sealed_key=b"k"),
        lambda: builders.key_share(PATIENT.identity, pseudonym=P, grantee="d", sealed_key=b"k"),
    ),
    "record": (
        lambda: client_tx.record(
            DOCTOR,
            pseudonym=P,
            category="lab-results",
            body_sha256=SHA,
            size=7,
            locators=["file://local/x"],
            capsule_sha256=SHA,
            content_type="application/pdf",
            created_at=T1,
            record_id="r1",
        ),
        lambda: builders.record(
            DOCTOR,
            pseudonym=P,
            category="lab-results",
            body_sha256=SHA,
            size=7,
            locators=["file://local/x"],
            capsule_sha256=SHA,
            content_type="application/pdf",
            created_at=T1,
            record_id="r1",
        ),
    ),
    "access_request": (
        lambda: client_tx.access_request(
            DOCTOR, pseudonym=P, rights=["read"], categories=["lab-results"], reason="why"
        ),
        lambda: builders.access_request(
            DOCTOR, pseudonym=P, rights=["read"], categories=["lab-results"], reason="why"
        ),
    ),
}


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_a_client_transaction_is_the_ledgers(kind: str) -> None:
    ours, theirs = PAIRS[kind][0](), PAIRS[kind][1]()
    parsed = LedgerTransaction.from_json(ours.to_json())
    assert parsed.tx_hash == ours.tx_hash
    signer = (
        ADMIN
        if ours.signer == "admin"
        else DOCTOR
        if ours.signer == "dr-grey"
        else PATIENT.identity
    )
    parsed.verify_signature(signer.signing_key.verify_key.to_bytes())
    assert ours.type == theirs.type
    assert ours.signer == theirs.signer
    without_times = {"tx_id", "issued_at"}
    assert {k: v for k, v in ours.body.items() if k not in without_times} == {
        k: v for k, v in theirs.body.items() if k not in without_times
    }
    assert set(ours.body) == set(theirs.body)


def test_a_transaction_round_trips_through_json() -> None:
    tx = PAIRS["record"][0]()
    again = client_tx.Transaction.from_json(json.loads(json.dumps(tx.to_json())))
    assert again == tx
    assert again.tx_hash == tx.tx_hash
    with pytest.raises(ValueError, match="signature"):
        client_tx.Transaction.from_json({**tx.to_json(), "signature": "AAAA"})
    with pytest.raises(ValueError, match="type, body, signer, signature"):
        client_tx.Transaction.from_json({**tx.to_json(), "extra": 1})


def _cases() -> list[Any]:
    files = sorted(VECTORS.glob("*/*.json"))
    assert files, f"no inclusion vectors under {VECTORS}"
    return [pytest.param(json.loads(f.read_text()), id=f"{f.parent.name}/{f.stem}") for f in files]


@pytest.mark.parametrize("case", _cases())
def test_inclusion_vector(case: dict[str, Any]) -> None:
    def run() -> None:
        proofs.verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            base64.b64decode(case["leafHash"]),
            [base64.b64decode(p) for p in case["proof"] or []],
            base64.b64decode(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(proofs.ProofInvalid):
            run()
    else:
        run()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 31, 64, 100])
def test_every_proof_of_a_tree_verifies_and_every_mutation_fails(size: int) -> None:
    leaves = [merkle.leaf_hash(os.urandom(8)) for _ in range(size)]
    nodes = merkle.nodes_from_leaf_hashes(leaves)
    root = merkle.root_from_nodes(size, lambda level, i: nodes[(level, i)])
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, lambda level, i: nodes[(level, i)])
        proofs.verify_inclusion(index, size, leaves[index], proof, root)
        mutations: list[tuple[int, int, list[bytes]]] = [
            (index ^ 1, size, proof),
            (index, size * 2, proof),
            (index, size, [*proof, bytes(32)]),
        ]
        if proof:
            mutations.append((index, size, proof[:-1]))
            for position in range(len(proof)):
                flipped = list(proof)
                flipped[position] = bytes([proof[position][0] ^ 1]) + proof[position][1:]
                mutations.append((index, size, flipped))
        for bad_index, bad_size, bad_proof in mutations:
            if (bad_index, bad_size, bad_proof) == (index, size, proof):
                continue
            with pytest.raises(proofs.ProofInvalid):
                proofs.verify_inclusion(bad_index, bad_size, leaves[index], bad_proof, root)


def test_a_tree_head_signature_is_checked() -> None:
    key = SigningKey.generate()
    block = Block.signed(
        key, height=3, previous_hash=bytes(32), tree_size=9, root=bytes(range(32)), timestamp=T1
    )
    head = block.to_json()
    proofs.verify_tree_head(head, block.signature, key.verify_key)
    with pytest.raises(InvalidSignature):
        proofs.verify_tree_head({**head, "tree_size": 10}, block.signature, key.verify_key)
    with pytest.raises(InvalidSignature):
        proofs.verify_tree_head(head, block.signature, SigningKey.generate().verify_key)


def _consistency_cases() -> list[Any]:
    files = sorted((VECTORS.parent / "consistency").glob("*/*.json"))
    assert files
    return [pytest.param(json.loads(f.read_text()), id=f"{f.parent.name}/{f.stem}") for f in files]


@pytest.mark.parametrize("case", _consistency_cases())
def test_consistency_vector(case: dict[str, Any]) -> None:
    def run() -> None:
        proofs.verify_consistency(
            case["size1"],
            case["size2"],
            base64.b64decode(case["root1"] or ""),
            base64.b64decode(case["root2"] or ""),
            [base64.b64decode(p) for p in case["proof"] or []],
        )

    if case["wantErr"]:
        with pytest.raises(proofs.ProofInvalid):
            run()
    else:
        run()


@pytest.mark.parametrize("new_size", [2, 3, 7, 8, 9, 30])
def test_every_consistency_proof_of_a_tree_verifies(new_size: int) -> None:
    leaves = [merkle.leaf_hash(os.urandom(8)) for _ in range(new_size)]
    nodes = merkle.nodes_from_leaf_hashes(leaves)

    def lookup(level: int, i: int) -> bytes:
        return nodes[(level, i)]

    new_root = merkle.root_from_nodes(new_size, lookup)
    for old_size in range(1, new_size + 1):
        old_root = merkle.root_from_nodes(old_size, lookup)
        proof = merkle.consistency_proof(old_size, new_size, lookup)
        proofs.verify_consistency(old_size, new_size, old_root, new_root, proof)
        if old_size < new_size:
            with pytest.raises(proofs.ProofInvalid):
                proofs.verify_consistency(old_size, new_size, new_root, new_root, proof)
