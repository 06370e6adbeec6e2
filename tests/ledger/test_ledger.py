"""The Ledger facade: group commit, receipts and proofs, state queries, capsules, reopening."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from envelope import IdentityKeys, SigningKey
from ledger import (
    Block,
    Entry,
    Ledger,
    LedgerError,
    LedgerSigner,
    LedgerUnavailable,
    MalformedTransaction,
    NotFound,
    Receipt,
    RuleViolation,
    SchemaMissing,
    Transaction,
    merkle,
)
from ledger.queries import open_read_only
from ledger.wire import builders as b
from ledger.wire.merkle import verify_consistency, verify_inclusion
from tests.ledger.conftest import FakeClock, World, build_world


def _access(w: World, n: int) -> Transaction:
    return b.access(
        w.gateway, actor=w.dr.id, action="list", pseudonym=w.pseudonym, decision="allowed",
        reason=f"request {n}", category="lab-results", at=w.clock(), issued_at=w.clock(),
    )  # fmt: skip


def test_concurrent_submits_are_group_committed_and_each_receipt_verifies(world: World) -> None:
    w = world
    before = w.ledger.head()
    assert before is not None
    txs = [_access(w, n) for n in range(400)]
    receipts: list[Receipt] = []
    lock = threading.Lock()

    def worker(chunk: list[Transaction]) -> None:
        for tx in chunk:
            receipt = w.ledger.submit(tx)
            with lock:
                receipts.append(receipt)

    threads = [threading.Thread(target=worker, args=(txs[i::16],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(receipts) == 400
    assert sorted(r.index for r in receipts) == list(
        range(before.tree_size, before.tree_size + 400)
    )
    head = w.ledger.head()
    assert head is not None
    assert head.height - before.height < 400, "no batching happened"
    by_hash = {tx.tx_hash: tx for tx in txs}
    for receipt in receipts:
        receipt.verify(w.ledger.verify_key, by_hash[receipt.tx_hash])
        # The receipt's tree head is one of the ledger's blocks, and it is consistent with now.
        proof = w.ledger.consistency_proof(receipt.tree_head.tree_size, head.tree_size)
        verify_consistency(
            receipt.tree_head.tree_size, head.tree_size, receipt.tree_head.root, head.root, proof
        )


def test_a_rejected_transaction_does_not_poison_its_batch(world: World) -> None:
    w = world
    good1, good2 = _access(w, 1), _access(w, 2)
    bad = w.record_tx(w.dr_other)  # no write grant
    futures = [w.ledger.submit_future(tx) for tx in (good1, bad, good2, good1)]
    assert isinstance(futures[0].result(), Receipt)
    with pytest.raises(RuleViolation, match="may not write"):
        futures[1].result()
    assert isinstance(futures[2].result(), Receipt)
    with pytest.raises(RuleViolation, match="already committed"):
        futures[3].result()
    assert futures[2].result().index == futures[0].result().index + 1


def test_submit_async(world: World) -> None:
    w = world

    async def main() -> list[Receipt]:
        return list(
            await asyncio.gather(*(w.ledger.submit_async(_access(w, n)) for n in range(20)))
        )

    receipts = asyncio.run(main())
    assert len({r.index for r in receipts}) == 20


def test_submit_accepts_transaction_json(world: World) -> None:
    tx = _access(world, 1)
    receipt = world.ledger.submit(tx.to_json())
    assert receipt.tx_hash == tx.tx_hash


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: {**d, "extra": 1}, "unknown fields extra"),
        (lambda d: {k: v for k, v in d.items() if k != "signer"}, "lacks signer"),
        (lambda d: {**d, "type": "delete_everything"}, "unknown transaction type"),
        (lambda d: {**d, "signature": "!!"}, "base64"),
        (lambda d: {**d, "body": {**d["body"], "tx_id": "short"}}, "tx_id"),
        (lambda d: {**d, "body": []}, "body is a JSON object"),
    ],
)
def test_malformed_transaction_json_is_refused(
    world: World, mutate: Callable[[dict[str, Any]], dict[str, Any]], message: str
) -> None:
    data = _access(world, 1).to_json()
    with pytest.raises(MalformedTransaction, match=message):
        world.ledger.submit(mutate(data))


def test_receipt_verification_rejects_a_wrong_key_or_transaction(world: World) -> None:
    from envelope import InvalidSignature
    from ledger import ProofError

    tx = _access(world, 1)
    receipt = world.ledger.submit(tx)
    with pytest.raises(InvalidSignature):
        receipt.verify(SigningKey.generate().verify_key, tx)
    with pytest.raises(ProofError):
        receipt.verify(world.ledger.verify_key, _access(world, 2))


def test_inclusion_and_consistency_proofs_for_every_entry(world: World) -> None:
    w = world
    for n in range(10):
        w.ledger.submit(_access(w, n))
    head = w.ledger.head()
    assert head is not None
    entries = w.ledger.entries(0, head.tree_size)
    assert [e.index for e in entries] == list(range(head.tree_size))
    assert merkle.root_from_leaf_hashes([e.tx.leaf_hash for e in entries]) == head.root
    for entry in entries:
        proof = w.ledger.inclusion_proof(entry.index, head.tree_size)
        verify_inclusion(entry.index, head.tree_size, entry.tx.leaf_hash, proof, head.root)
    for block in w.ledger.blocks(0, 1000):
        proof = w.ledger.consistency_proof(block.tree_size, head.tree_size)
        verify_consistency(block.tree_size, head.tree_size, block.root, head.root, proof)
    with pytest.raises(NotFound):
        w.ledger.inclusion_proof(head.tree_size, head.tree_size)
    with pytest.raises(NotFound):
        w.ledger.consistency_proof(1, head.tree_size + 1)


def test_export_formats_round_trip(world: World) -> None:
    entry = world.ledger.entry(3)
    assert Entry.from_json(entry.to_json()) == entry
    block = world.ledger.block(2)
    assert Block.from_json(block.to_json()) == block
    assert world.ledger.receipt(3).index == 3
    with pytest.raises(NotFound):
        world.ledger.block(10_000)


def test_state_queries(world: World) -> None:
    w = world
    records = w.ledger.records_of(w.pseudonym)
    assert [r.record_id for r in records] == [w.record_id]
    assert w.ledger.records_of(w.pseudonym, "radiation-dose") == []
    record = w.ledger.cached_record(w.record_id)
    assert record is not None
    assert record == records[0]
    assert record.locators[0].startswith("local:")
    assert record.uploader == w.dr.id
    identity = w.ledger.identity(w.dr.id)
    assert identity is not None
    assert identity.role == "clinician"
    assert not identity.suspended
    patient = w.ledger.patient(w.pseudonym)
    assert patient is not None
    assert patient.identity_id == w.patient.id
    assert w.ledger.patients_of(w.patient.id) == [patient]
    w.ledger.submit(
        b.key_share(w.patient, pseudonym=w.pseudonym, grantee=w.dr.id, sealed_key=b"K1",
                    issued_at=w.clock())
    )  # fmt: skip
    w.ledger.submit(
        b.key_share(w.patient, pseudonym=w.pseudonym, grantee=w.dr.id, sealed_key=b"K2",
                    issued_at=w.clock())
    )  # fmt: skip
    share = w.ledger.key_share(w.pseudonym, w.dr.id)
    assert share is not None
    assert share.sealed_key == "SzI="
    w.ledger.submit(_access(w, 7))
    history = w.ledger.access_history(w.pseudonym)
    assert history[-1].reason == "request 7"
    assert history[-1].actor == w.dr.id
    assert history[-1].allowed
    w.ledger.submit(
        b.access_request(w.dr_other, pseudonym=w.pseudonym, rights=["read"], categories="all",
                         reason="second opinion", issued_at=w.clock())
    )  # fmt: skip
    requests = w.ledger.access_requests(w.pseudonym)
    assert [(r.reason, r.rights, r.categories) for r in requests] == [
        ("second opinion", ("read",), "all")
    ]


def test_in_memory_lookups_follow_each_change_of_their_row(world: World) -> None:
    w = world
    before = w.ledger.identity(w.dr_other.id)
    assert before is not None
    assert w.ledger.identity(w.dr_other.id) is before  # the same row: the same result
    w.ledger.submit(b.suspend(w.admin, w.dr_other.id, "left", issued_at=w.clock()))
    after = w.ledger.identity(w.dr_other.id)
    assert after is not None
    assert not before.suspended
    assert after.suspended
    assert after.suspended_reason == "left"
    record = w.ledger.cached_record(w.record_id)
    assert record is not None
    rekey = b.rekey(w.patient, record_id=w.record_id, capsule_sha256="ef" * 32,
                    issued_at=w.clock())  # fmt: skip
    w.ledger.submit(rekey)
    rekeyed = w.ledger.cached_record(w.record_id)
    assert rekeyed is not None
    assert record.capsule_sha256 != rekeyed.capsule_sha256 == "ef" * 32
    assert rekeyed.rekeyed_at is not None


def test_capsules_are_stored_with_their_record_and_can_be_erased(world: World) -> None:
    w = world
    capsule = b"capsule bytes"
    sha = hashlib.sha256(capsule).hexdigest()
    w.ledger.submit(w.record_tx(w.dr, capsule_sha256=sha), capsule=capsule)
    assert w.ledger.capsule(sha) == capsule
    with pytest.raises(MalformedTransaction, match="capsule"):
        w.ledger.submit(w.record_tx(w.dr), capsule=b"another capsule")
    assert w.ledger.delete_capsule(sha)
    assert w.ledger.capsule(sha) is None
    assert not w.ledger.delete_capsule(sha)


def test_referenced_blobs_are_every_records_body_and_capsule_and_a_rekey_drops_the_old(
    world: World, database_url: str
) -> None:
    w = world
    old, new = b"first capsule", b"capsule after rekey"
    old_sha, new_sha = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    record = w.record_tx(w.dr, body_sha256="12" * 32, capsule_sha256=old_sha)
    w.ledger.submit(record, capsule=old)
    rekey = b.rekey(w.patient, record_id=record.body["record_id"], capsule_sha256=new_sha,
                    issued_at=w.clock())  # fmt: skip
    w.ledger.submit(rekey, capsule=new)
    bodies = {r.body_sha256 for r in w.ledger.records_of(w.pseudonym)}
    capsules = {r.capsule_sha256 for r in w.ledger.records_of(w.pseudonym)}
    referenced = w.ledger.referenced_blobs()
    # the rekey deleted the capsule it superseded, in the same database transaction
    assert w.ledger.capsule(old_sha) is None
    assert w.ledger.capsule(new_sha) == new
    assert referenced == bodies | capsules
    assert {"12" * 32, new_sha} <= referenced
    assert old_sha not in referenced
    reader = open_read_only(database_url)
    try:
        assert reader.referenced_blobs() == referenced
        assert reader.records_of(w.pseudonym) == w.ledger.records_of(w.pseudonym)
        assert reader.head() == w.ledger.head()
    finally:
        reader.close()
    w.ledger.delete_capsule(old_sha)
    assert old_sha not in w.ledger.referenced_blobs()


def test_a_capsule_of_a_rejected_record_is_not_stored(world: World) -> None:
    w = world
    capsule = b"orphan"
    sha = hashlib.sha256(capsule).hexdigest()
    with pytest.raises(RuleViolation):
        w.ledger.submit(w.record_tx(w.dr_other, capsule_sha256=sha), capsule=capsule)
    assert w.ledger.capsule(sha) is None


def test_reopening_restores_state_and_head(world: World, database_url: str) -> None:
    w = world
    head = w.ledger.head()
    key = w.ledger.signer.signing_key
    w.ledger.close()
    with Ledger.open(database_url, key, clock=w.clock) as again:
        assert again.head() == head
        assert again.check(w.dr.id, "read", w.pseudonym, "lab-results")
        receipt = again.submit(_access(w, 1))
        assert head is not None
        assert receipt.tree_head.previous_hash == head.block_hash


def test_opening_with_another_ledger_key_is_refused(world: World, database_url: str) -> None:
    with pytest.raises(LedgerError, match="another ledger key"):
        Ledger.open(database_url, SigningKey.generate())


def test_opening_a_database_without_schema(tmp_path: Path) -> None:
    with pytest.raises(SchemaMissing, match="alembic upgrade head"):
        Ledger.open(f"sqlite:///{tmp_path / 'empty.db'}", SigningKey.generate())


def test_block_timestamps_never_go_backwards(world: World) -> None:
    w = world
    w.clock.advance(-timedelta(hours=1))
    receipt = w.ledger.submit(_access(w, 1))
    assert receipt.tree_head.timestamp >= w.ledger.block(receipt.tree_head.height - 1).timestamp


def test_closed_ledger_refuses_submissions(ledger: Ledger, clock: FakeClock) -> None:
    ledger.close()
    admin = IdentityKeys.generate("admin-1", "admin")
    with pytest.raises(LedgerUnavailable, match="closed"):
        ledger.bootstrap(admin.public())


def test_signatures_checked_in_worker_processes(tmp_path: Path, clock: FakeClock) -> None:
    from tests.ledger.test_rules import _forged

    url = f"sqlite:///{tmp_path / 'workers.db'}"
    key = SigningKey.generate()
    with Ledger.open(url, key, clock=clock, create_schema=True, verify_workers=1) as ledger:
        world = build_world(ledger, clock)
        # Parsed from JSON, as a client's would be: the workers must check every one.
        txs = [Transaction.from_bytes(_access(world, n).encoded) for n in range(300)]
        txs[150] = _forged(txs[150])
        results = ledger.submit_many(txs)
    refused = [n for n, r in enumerate(results) if isinstance(r, RuleViolation)]
    assert refused == [150]
    failure = results[150]
    assert isinstance(failure, RuleViolation)
    assert failure.code == "bad-signature"


def test_a_large_submission_is_checked_on_threads_and_answered_in_order(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`submit_many` verifies chunks on a thread per core: every signature once, a forged
    one refused in its place, the rest committed in the order given."""
    import threading

    from tests.ledger.test_rules import _forged

    w = world
    checked = _count_verifications(monkeypatch)
    threads: set[str] = set()
    real_ahead = Ledger._verify_ahead

    def noting(self: Ledger, txs: list[Transaction]) -> None:
        threads.add(threading.current_thread().name)
        real_ahead(self, txs)

    monkeypatch.setattr(Ledger, "_verify_ahead", noting)
    txs = [Transaction.from_bytes(_access(w, n).encoded) for n in range(700)]
    txs[300] = _forged(txs[300])
    size = w.ledger.tree_size()
    results = w.ledger.submit_many(txs)
    refused = [n for n, r in enumerate(results) if isinstance(r, RuleViolation)]
    assert refused == [300]
    failure = results[300]
    assert isinstance(failure, RuleViolation)
    assert failure.code == "bad-signature"
    indexes = [r.index for r in results if isinstance(r, Receipt)]
    assert indexes == list(range(size, size + 699))
    assert threads
    assert all(name.startswith("ledger-verify") for name in threads)
    assert sorted(set(checked)) == sorted({tx.signature for tx in txs})


def test_a_failed_commit_changes_nothing(world: World, database_url: str) -> None:
    import sqlalchemy as sa

    from ledger import DatabaseSource
    from ledger.verify import verify

    w = world
    size = w.ledger.tree_size()
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE ledger_blocks RENAME TO ledger_blocks_away"))
        grant = b.grant(
            w.patient, pseudonym=w.pseudonym, grantee=w.auditor.id, rights=["read"],
            categories="all", not_before=w.clock(), not_after=w.clock() + timedelta(days=1),
            issued_at=w.clock(),
        )  # fmt: skip
        with pytest.raises(LedgerUnavailable, match="database failed"):
            w.ledger.submit(grant)
        assert w.ledger.tree_size() == size
        assert not w.ledger.check(w.auditor.id, "read", w.pseudonym, "lab-results")
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE ledger_blocks_away RENAME TO ledger_blocks"))
    finally:
        engine.dispose()
    assert w.ledger.submit(grant).index == size  # the same transaction, now durable
    assert w.ledger.check(w.auditor.id, "read", w.pseudonym, "lab-results")
    with DatabaseSource(database_url) as source:
        assert verify(source).ok


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record each signature the ledger checks in this process, one at a time or batched."""
    from envelope import VerifyKey
    from ledger import signatures

    checked: list[bytes] = []
    real_triples = signatures.check_triples
    real_verify = VerifyKey.verify_bytes

    def counting_triples(triples: Any) -> list[bool]:
        checked.extend(signature for _, _, signature in triples)
        return real_triples(triples)

    def counting_verify(self: VerifyKey, message: bytes, signature: bytes) -> None:
        checked.append(signature)
        real_verify(self, message, signature)

    monkeypatch.setattr(signatures, "check_triples", counting_triples)
    monkeypatch.setattr(VerifyKey, "verify_bytes", counting_verify)
    return checked


def test_ledger_authored_transactions_are_not_verified_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    checked = _count_verifications(monkeypatch)
    own = [_access(w, n) for n in range(5)]
    results = w.ledger.submit_many(own)
    assert all(isinstance(r, Receipt) for r in results)
    assert checked == []
    # The same entries, once they have been JSON, are anyone's: each is verified.
    parsed = [Transaction.from_bytes(_access(w, n).encoded) for n in range(5, 10)]
    results = w.ledger.submit_many(parsed)
    assert all(isinstance(r, Receipt) for r in results)
    assert sorted(checked) == sorted(tx.signature for tx in parsed)


def test_a_transaction_claiming_the_ledger_as_signer_is_verified(world: World) -> None:
    from tests.ledger.test_rules import _forged

    w = world
    genuine = _access(w, 1)
    assert genuine.signer == "ledger"
    # Signed by another key but naming the ledger, built in-process or arriving as JSON.
    forged = _forged(genuine)
    for tx in (forged, Transaction.from_bytes(forged.encoded)):
        with pytest.raises(RuleViolation) as failure:
            w.ledger.submit(tx)
        assert failure.value.code == "bad-signature"
    # Another process's LedgerSigner with its own key: its mark is for that key only.
    impostor = b.access(
        LedgerSigner(SigningKey.generate()), actor=w.dr.id, action="list",
        pseudonym=w.pseudonym, decision="allowed", reason="impostor", at=w.clock(),
        issued_at=w.clock(),
    )  # fmt: skip
    with pytest.raises(RuleViolation) as failure:
        w.ledger.submit(impostor)
    assert failure.value.code == "bad-signature"
    # A genuine signature round-tripped through JSON still verifies and is accepted.
    receipt = w.ledger.submit(Transaction.from_bytes(genuine.encoded))
    assert receipt.tx_hash == genuine.tx_hash
