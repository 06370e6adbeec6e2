"""Database faults under load: PostgreSQL restarted, a SQLite file locked by another process,
the disk of the data directory full.

In every case the ledger reports the fault as `LedgerUnavailable` (the gateway's 503),
never anything else, recovers by itself when the fault clears, and has lost nothing it
acknowledged: the ledger verifies and every receipt's entry is where the receipt says.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envelope import IdentityKeys, SigningKey
from ledger import Ledger, LedgerUnavailable
from ledger.migrate import upgrade
from ledger.wire import builders as b
from storage import StoreUnavailable, open_store
from tests.faults.conftest import FIGURES
from tests.faults.load import AppendLoad, assert_nothing_acknowledged_was_lost
from tests.faults.local import SqliteLocker, fill
from tests.faults.pgserver import PrivatePostgres
from tests.faults.settings import rng_for

pytestmark = pytest.mark.faults


def open_bootstrapped(url: str) -> Ledger:
    ledger = Ledger.open(url, SigningKey.generate())
    ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
    return ledger


# --- PostgreSQL restarted under load ----------------------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with PrivatePostgres.start() as server:
        yield server


@pytest.mark.timeout(300)
def test_postgresql_restarted_under_load_loses_nothing_acknowledged(
    private_postgres: PrivatePostgres, request: pytest.FixtureRequest
) -> None:
    rng = rng_for(request.node.name)
    url = private_postgres.create_database("ledger")
    upgrade(url)
    ledger = open_bootstrapped(url)
    load = AppendLoad(ledger, threads=4).start()
    try:
        restarts = 3
        for _ in range(restarts):
            load.wait_for_acks(load.ack_count() + 20)
            time.sleep(rng.uniform(0.0, 0.3))
            errors_before = load.error_count()
            private_postgres.stop(mode=rng.choice(["immediate", "fast"]))
            load.wait_for_errors(errors_before + 1)
            time.sleep(rng.uniform(0.2, 1.0))
            private_postgres.restart()
            # Recovered: appends are acknowledged again without restarting the ledger.
            load.wait_for_acks(load.ack_count() + 20)
    finally:
        load.stop()
    assert set(load.errors) == {"LedgerUnavailable"}, load.error_messages
    size = assert_nothing_acknowledged_was_lost(url, load.acks)
    assert ledger.tree_size() == size
    ledger.close()
    FIGURES["postgresql restarts survived"] += restarts
    FIGURES["postgresql acknowledged appends verified"] += len(load.acks)


# --- a SQLite file locked by another process --------------------------------------------------


def test_a_sqlite_lock_held_briefly_by_another_process_delays_appends_and_loses_none(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    upgrade(url)
    ledger = open_bootstrapped(url)
    load = AppendLoad(ledger).start()
    try:
        load.wait_for_acks(20)
        locker = SqliteLocker(tmp_path / "ledger.db")
        time.sleep(0.3)  # appends already under way finish; then no commit can get the lock
        stalled = load.ack_count()
        time.sleep(1.0)
        assert load.ack_count() == stalled, "an append was acknowledged while the lock was held"
        locker.release()
        load.wait_for_acks(stalled + 20)
    finally:
        load.stop()
    assert not load.errors, load.error_messages
    assert_nothing_acknowledged_was_lost(url, load.acks)
    ledger.close()


def test_a_sqlite_lock_held_past_the_timeout_is_unavailable_then_recovers(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}?timeout=0.5"
    upgrade(url)
    ledger = open_bootstrapped(url)
    load = AppendLoad(ledger).start()
    try:
        load.wait_for_acks(20)
        locker = SqliteLocker(tmp_path / "ledger.db")
        load.wait_for_errors(1, timeout=30)
        locker.release()
        load.wait_for_acks(load.ack_count() + 20)
    finally:
        load.stop()
    assert set(load.errors) == {"LedgerUnavailable"}, load.error_messages
    assert any("locked" in message for message in load.error_messages), load.error_messages
    assert_nothing_acknowledged_was_lost(url, load.acks)
    ledger.close()


# --- the disk of the data directory full ------------------------------------------------------


def append_one(ledger: Ledger, reason: str, acks: dict[int, str]) -> int:
    tx = b.access(ledger.signer, actor=ledger.signer.id, action="list", pseudonym="00" * 32,
                  decision="denied", reason=reason)  # fmt: skip
    index = ledger.submit(tx, timeout=60).index
    acks[index] = tx.tx_id
    return index


def test_a_full_disk_makes_appends_and_uploads_unavailable_until_space_is_freed(
    small_disk: Path,
) -> None:
    url = f"sqlite:///{small_disk / 'ledger.db'}"
    upgrade(url)
    ledger = open_bootstrapped(url)
    store = open_store(f"file://{small_disk / 'blobs'}?name=disk")
    acks: dict[int, str] = {}
    for n in range(50):
        append_one(ledger, f"before {n}", acks)
    filler = fill(small_disk)

    refused = None
    for n in range(5000):  # the WAL may still have room for a few batches
        try:
            append_one(ledger, f"on a full disk {n}", acks)
        except LedgerUnavailable as exc:
            refused = exc
            break
    assert refused is not None, "appends went on although the disk is full"
    assert "full" in str(refused)
    with pytest.raises(StoreUnavailable):
        store.put(io.BytesIO(os.urandom(1 << 20)))
    assert list((small_disk / "blobs" / "incoming").iterdir()) == []

    filler.unlink()
    index = append_one(ledger, "space again", acks)
    blob = store.put(io.BytesIO(b"a body after the disk was freed"))
    assert b"".join(store.get(blob.locators, sha256=blob.sha256)) == (
        b"a body after the disk was freed"
    )
    ledger.close()
    store.close()
    size = assert_nothing_acknowledged_was_lost(url, acks)
    assert size == index + 1
