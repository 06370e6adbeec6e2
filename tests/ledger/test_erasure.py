"""Erasure on the ledger: the state marks erased records, the replay agrees, and the
capsule check expects an erased record's capsules gone (and names any left)."""

from __future__ import annotations

from envelope import SigningKey
from ledger import DatabaseSource, Ledger, VerifyReport
from ledger.queries import open_read_only
from ledger.verify import verify
from ledger.wire import builders as b
from tests.ledger.capsule_ledger import FIRST, NEW, OLD, sha
from tests.ledger.conftest import FakeClock, World, build_world


def _run(url: str) -> VerifyReport:
    with DatabaseSource(url) as source:
        return verify(source)


def test_an_erased_records_capsules_must_go_and_then_verify(database_url: str) -> None:
    key_clock = FakeClock()
    with Ledger.open(database_url, SigningKey.generate(), clock=key_clock) as ledger:
        world = build_world(ledger, key_clock)
        record = world.record_tx(world.dr, capsule_sha256=sha(OLD))
        ledger.submit(record, capsule=OLD)
        rid = str(record.body["record_id"])
        ledger.submit(
            b.rekey(world.patient, record_id=rid, capsule_sha256=sha(NEW), issued_at=key_clock()),
            capsule=NEW,
        )
        erase = b.erase(world.patient, pseudonym=world.pseudonym, record_id=rid,
                        issued_at=key_clock())  # fmt: skip
        index = ledger.submit(erase).index
        erasure = ledger.erasure(rid)
        assert erasure is not None
        assert (erasure.scope, erasure.erased_by, erasure.entry_index) == (
            "record", world.patient.id, index)  # fmt: skip
        assert ledger.erasure(world.record_id) is None
        assert ledger.record_capsules(rid) == {sha(OLD), sha(NEW)}
        _, capsules = ledger.erased_blobs()
        assert capsules == {sha(OLD), sha(NEW)}
        assert sha(OLD) not in ledger.referenced_blobs()
        assert sha(NEW) not in ledger.referenced_blobs()

    # The rekey deleted the row of the capsule it replaced; before the current one is
    # deleted, verification names it.
    report = _run(database_url)
    assert report.damage is None
    assert [(d.kind, d.where) for d in report.capsule_damage] == [
        ("capsule-not-erased", f"capsule {sha(NEW)}")
    ]
    assert "ehrgate gc" in report.capsule_damage[0].problem
    assert not report.ok

    queries = open_read_only(database_url)
    try:
        assert queries.delete_capsules({sha(OLD), sha(NEW)}) == 1
    finally:
        queries.close()
    report = _run(database_url)
    assert report.ok, report.summary()
    assert report.state_compared  # the stored state equals the replay's
    assert report.erased == [(index, rid)]
    assert [(n.kind, n.where) for n in report.notes] == [("capsule-erased", f"record {rid}")]
    assert f"erased record {rid} (entry {index})" in report.summary()
    assert report.to_json()["erased"] == [{"record_id": rid, "entry_index": index}]


def test_erasing_a_patient_erases_every_record_it_has_then(database_url: str) -> None:
    clock = FakeClock()
    with Ledger.open(database_url, SigningKey.generate(), clock=clock) as ledger:
        world: World = build_world(ledger, clock)
        second = world.record_tx(world.dr, capsule_sha256=sha(FIRST))
        ledger.submit(second, capsule=FIRST)
        every = sorted({world.record_id, str(second.body["record_id"])})
        tx = b.erase(world.admin, pseudonym=world.pseudonym, reason="court order 12/2026",
                     issued_at=clock())  # fmt: skip
        index = ledger.submit(tx).index
        erased = ledger.erasures_of(world.pseudonym)
        assert sorted(e.record_id for e in erased) == every
        assert {(e.scope, e.erased_by, e.entry_index) for e in erased} == {
            ("patient", world.admin.id, index)
        }
        # A record committed afterwards is not erased by it.
        later = world.record_tx(world.dr)
        ledger.submit(later)
        assert ledger.erasure(str(later.body["record_id"])) is None
    report = _run(database_url)
    assert report.damage is None, report.summary()
    assert [rid for _, rid in report.erased] == every
