"""Several writers on one database: two real processes never fork the ledger, and replaying
the same log gives the same state digest on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from envelope import IdentityKeys, SigningKey
from ledger import DatabaseSource, Ledger, schema
from ledger.replay import replay_database
from ledger.verify import verify
from ledger.wire import builders as b
from tests.ledger.conftest import FakeClock, World, build_world

ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, key: SigningKey, count: int, name: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.appender", url, key.private_bytes().hex(),
         str(count), name],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_appends(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Return once the appender has committed past the genesis block (however slowly a
    loaded machine starts it)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as conn:
                if (
                    conn.execute(
                        sa.select(sa.func.count()).select_from(schema.entries)
                    ).scalar_one()
                    > 1
                ):
                    return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"the appender committed nothing in {timeout} s")


def test_two_processes_appending_never_fork_the_ledger(database_url: str) -> None:
    key = SigningKey.generate()
    with Ledger.open(database_url, key) as ledger:
        ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
    count = 60
    processes = [_spawn(database_url, key, count, name) for name in ("left", "right")]
    given: list[int] = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        given += json.loads(out)
    assert sorted(given) == list(range(1, 1 + 2 * count)), "an index was handed out twice"
    with DatabaseSource(database_url) as source:
        report = verify(source, ledger_key=key.verify_key)
    assert report.ok, report.summary()
    assert report.entries == 1 + 2 * count
    with Ledger.open(database_url, key) as ledger:
        reasons = {
            e.tx.body["reason"] for e in ledger.entries(1, 2 * count) if e.tx.type == "access"
        }
    assert len(reasons) == 2 * count


@pytest.mark.postgres
def test_replay_gives_the_same_state_digest_on_sqlite_and_postgres(
    tmp_path: Path, migrated_sqlite: Path, migrated_postgres: str
) -> None:
    from tests.ledger.conftest import empty_postgres_ledger

    sqlite_path = tmp_path / "same.db"
    shutil.copyfile(migrated_sqlite, sqlite_path)
    empty_postgres_ledger(migrated_postgres)
    urls = [f"sqlite:///{sqlite_path}", migrated_postgres]
    key = SigningKey.generate()
    # Record the transactions written to the first ledger and write the same ones to the
    # second, one per block, under the same clock: the two logs are then identical.
    first_clock = FakeClock()
    with Ledger.open(urls[0], key, clock=first_clock) as first:
        world = build_world(first, first_clock)
        first.submit(
            b.revoke(world.patient, pseudonym=world.pseudonym, permission_id=world.grant_id,
                     issued_at=first_clock())
        )  # fmt: skip
        txs = [e.tx for e in first.entries(0, 10_000)]
        capsules = [
            first.capsule(tx.body["capsule_sha256"]) if tx.type == "record" else None for tx in txs
        ]
    with Ledger.open(urls[1], key, clock=FakeClock()) as second:
        for tx, capsule in zip(txs, capsules, strict=True):
            second.submit(tx, capsule=capsule)
    digests = []
    roots = []
    for url in urls:
        with DatabaseSource(url) as source:
            report = verify(source, ledger_key=key.verify_key)
        assert report.ok, report.summary()
        assert report.state_compared
        digests.append(report.state_digest)
        roots.append(report.root)
        replayed = replay_database(url)
        assert replayed.state_digest == report.state_digest
    assert roots[0] == roots[1]
    assert digests[0] == digests[1]


def test_a_second_writer_catches_up_with_the_first(
    world: World, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    with Ledger.open(database_url, w.ledger.signer.signing_key, clock=w.clock) as other:
        grant = b.grant(
            w.patient, pseudonym=w.pseudonym, grantee=w.dr_other.id, rights=["write"],
            categories=["radiation-dose"], not_before=w.clock(),
            not_after=w.clock() + timedelta(hours=1), issued_at=w.clock(),
        )  # fmt: skip
        w.ledger.submit(grant)
        # `other` has not seen the grant; its commit must first follow the log.
        capsule = b"the second writer's capsule"
        record = w.record_tx(
            w.dr_other,
            category="radiation-dose",
            capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        )
        receipt = other.submit(record, capsule=capsule)
        assert receipt.index == w.ledger.tree_size()
        assert other.check(w.dr_other.id, "write", w.pseudonym, "radiation-dose")
        # And the first writer follows the second in turn.
        permission_id = grant.body["permission_id"]
        revoke = b.revoke(
            w.patient, pseudonym=w.pseudonym, permission_id=permission_id, issued_at=w.clock()
        )
        w.ledger.submit(revoke)
    assert "reloading" not in caplog.text
    with DatabaseSource(database_url) as source:
        assert verify(source).ok


def test_kill_during_group_commit_leaves_a_ledger_that_verifies(database_url: str) -> None:
    key = SigningKey.generate()
    with Ledger.open(database_url, key) as ledger:
        ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
    process = _spawn(database_url, key, 100_000, "doomed")
    _wait_for_appends(database_url, process)
    time.sleep(0.3)  # into the middle of later group commits
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    with DatabaseSource(database_url) as source:
        report = verify(source, ledger_key=key.verify_key)
    assert report.ok, report.summary()
    assert report.entries > 1, "the process appended nothing before it was killed"
    with Ledger.open(database_url, key) as ledger:  # the interrupted ledger opens and goes on
        assert ledger.tree_size() == report.entries
        tx = b.access(ledger.signer, actor=ledger.signer.id, action="list",
                      pseudonym="00" * 32, decision="denied", reason="after the crash")  # fmt: skip
        assert ledger.submit(tx).index == report.entries
