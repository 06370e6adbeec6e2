"""Key generations on the ledger: a rotated K's publish_keys replaces older keys, starts the
next generation, and the rekeys and records say which generation they are sealed to."""

from __future__ import annotations

import pytest

from ledger import Ledger, RuleViolation
from ledger.wire import builders as b
from ledger.wire.transactions import Transaction
from tests.ledger.conftest import World

KEY_1, KEY_2, KEY_3 = b"\x01" * 1216, b"\x02" * 1216, b"\x03" * 1216


def publish(w: World, key: bytes, generation: int | None, period: str = "2026-01") -> Transaction:
    return b.publish_keys(w.patient, pseudonym=w.pseudonym, keys=[("lab-results", period, key)],
                          generation=generation, issued_at=w.clock())  # fmt: skip


def rekey(w: World, generation: int | None, capsule: str = "ef" * 32) -> Transaction:
    return b.rekey(w.patient, record_id=w.record_id, capsule_sha256=capsule,
                   generation=generation, issued_at=w.clock())  # fmt: skip


def refused(ledger: Ledger, tx: Transaction, code: str) -> str:
    with pytest.raises(RuleViolation) as caught:
        ledger.submit(tx)
    assert caught.value.code == code, str(caught.value)
    return str(caught.value)


def generation_of(w: World) -> int:
    row = w.ledger._committer.state.get("key_generations", w.pseudonym)
    return 1 if row is None else int(row["generation"])


def test_a_new_generation_replaces_the_key_and_an_old_one_cannot_come_back(world: World) -> None:
    w = world
    w.ledger.submit(publish(w, KEY_1, None))
    message = refused(w.ledger, publish(w, KEY_2, 1), "key-already-published")
    assert "rotate-keys" in message
    receipt = w.ledger.submit(publish(w, KEY_2, 2))
    assert generation_of(w) == 2
    key = w.ledger.published_key(w.pseudonym, "lab-results", "2026-01")
    assert key is not None
    assert (key.generation, key.entry_index) == (2, receipt.index)
    # generation 1 is over: neither its keys nor a new one of it are taken
    assert "current generation is 2" in refused(
        w.ledger, publish(w, KEY_1, 1), "stale-key-generation"
    )
    refused(w.ledger, publish(w, KEY_1, None, "2026-02"), "stale-key-generation")
    # within generation 2 a key is never replaced; generation 4 skips 3
    refused(w.ledger, publish(w, KEY_3, 2), "key-already-published")
    refused(w.ledger, publish(w, KEY_3, 4), "key-generation-skipped")
    w.ledger.submit(publish(w, KEY_2, 2))  # the same key again changes nothing
    assert generation_of(w) == 2


@pytest.mark.parametrize("value", [0, -1, True, "2", 2**31])
def test_a_malformed_generation_is_refused(world: World, value: object) -> None:
    tx = publish(world, KEY_1, None)
    bad = b.sign(world.patient, "publish_keys", {**tx.body, "generation": value},
                 issued_at=world.clock())  # fmt: skip
    refused(world.ledger, bad, "malformed")


def test_records_and_rekeys_carry_the_generation(world: World) -> None:
    w = world
    assert w.ledger.cached_record(w.record_id).key_generation == 1  # type: ignore[union-attr]
    w.ledger.submit(publish(w, KEY_1, 2))
    # a record committed now is sealed to the current generation's keys
    receipt = w.ledger.submit(w.record_tx(w.dr, issued_at=w.clock()))
    [new] = [r for r in w.ledger.records_of(w.pseudonym) if r.entry_index == receipt.index]
    assert new.key_generation == 2
    # the old record is still of generation 1 until its rekey, which must name generation 2
    assert w.ledger.cached_record(w.record_id).key_generation == 1  # type: ignore[union-attr]
    assert "current generation is 2" in refused(w.ledger, rekey(w, 1), "stale-key-generation")
    refused(w.ledger, rekey(w, 3), "stale-key-generation")
    index = w.ledger.submit(rekey(w, 2)).index
    record = w.ledger.cached_record(w.record_id)
    assert record is not None
    assert (record.key_generation, record.rekeyed_at, record.capsule_sha256) == (
        2,
        index,
        "ef" * 32,
    )
    # a rekey without a generation is of the current one
    w.ledger.submit(rekey(w, None, "ee" * 32))
    assert w.ledger.records_of(w.pseudonym)[0].key_generation == 2


def test_only_the_patient_rotates_its_keys(world: World) -> None:
    w = world
    tx = b.publish_keys(w.patient2, pseudonym=w.pseudonym, keys=[("lab-results", "2026-01", KEY_1)],
                        generation=2, issued_at=w.clock())  # fmt: skip
    refused(w.ledger, tx, "not-owner")
    for other in (w.dr, w.patient2):  # the uploader, another patient
        tx = b.rekey(other, record_id=w.record_id, capsule_sha256="ef" * 32, generation=1,
                     issued_at=w.clock())  # fmt: skip
        refused(w.ledger, tx, "not-owner")
    assert w.ledger.cached_record(w.record_id).capsule_sha256 != "ef" * 32  # type: ignore[union-attr]
    assert generation_of(w) == 1
