"""Kill -9 of a process appending to the ledger with group commit, at seeded random moments.

Several threads of a child process append continuously (so a kill nearly always lands with
a batch being built, written or committed) and report every receipt through a pipe. After
each kill: the ledger verifies, every append the child acknowledged is at the index its
receipt named, and a new writer goes on appending. Pins: receipts only after the commit
(`Committer._write`), one database transaction per batch, the conditional head update, SQLite
`synchronous=FULL` in WAL mode.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from envelope import IdentityKeys, SigningKey
from ledger import DatabaseSource, Ledger, schema
from ledger.verify import verify
from ledger.wire import builders as b
from tests.faults.conftest import FIGURES
from tests.faults.harness import Child
from tests.faults.settings import fault_kills, rng_for

pytestmark = pytest.mark.faults

WRITER_THREADS = 6


def stored_tx_ids(url: str) -> dict[int, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = schema.entries
            return {int(i): str(x) for i, x in conn.execute(sa.select(t.c.idx, t.c.tx_id))}
    finally:
        engine.dispose()


def parse_acks(lines: list[str]) -> dict[int, str]:
    acks: dict[int, str] = {}
    for line in lines:
        if line == "ready":
            continue
        index, tx_id = line.split()
        assert int(index) not in acks, f"index {index} was acknowledged twice"
        acks[int(index)] = tx_id
    return acks


def test_acknowledged_appends_survive_kill_9_during_group_commit(
    ledger_url: str, request: pytest.FixtureRequest
) -> None:
    rng = rng_for(request.node.name)
    key = SigningKey.generate()
    with Ledger.open(ledger_url, key) as ledger:
        ledger.bootstrap(IdentityKeys.generate("admin-1", "admin").public())
    acknowledged: dict[int, str] = {}
    entries = 1
    for kill in range(fault_kills()):
        with Child(
            "tests.faults.ledger_writer",
            [ledger_url, key.private_bytes().hex(), str(WRITER_THREADS), f"life-{kill}"],
        ) as child:
            child.wait_for_line("ready", timeout=60)
            # Let it append for a random moment (at least one receipt, so appends are in
            # flight when the signal lands), then kill it.
            child.wait_for_count(2, timeout=60)
            time.sleep(rng.uniform(0.0, 0.4))
            acks = parse_acks(child.kill())
        clash = {i for i in acks if i in acknowledged}
        assert not clash, f"indices {sorted(clash)[:5]} were acknowledged in two lifetimes"
        acknowledged.update(acks)
        with DatabaseSource(ledger_url) as source:
            report = verify(source, ledger_key=key.verify_key)
        assert report.ok, f"after kill {kill + 1}: {report.summary()}"
        assert report.entries >= entries, "entries disappeared"
        entries = report.entries
        stored = stored_tx_ids(ledger_url)
        lost = sorted(i for i, tx_id in acknowledged.items() if stored.get(i) != tx_id)
        assert not lost, f"after kill {kill + 1}: acknowledged appends lost at {lost[:10]}"
        FIGURES["ledger kills survived"] += 1
    FIGURES["ledger acknowledged appends verified"] += len(acknowledged)
    # Appending goes on after the last crash, from a fresh writer.
    with Ledger.open(ledger_url, key) as ledger:
        assert ledger.tree_size() == entries
        tx = b.access(
            ledger.signer,
            actor=ledger.signer.id,
            action="list",
            pseudonym="00" * 32,
            decision="denied",
            reason="after the crashes",
        )
        assert ledger.submit(tx).index == entries
    with DatabaseSource(ledger_url) as source:
        assert verify(source, ledger_key=key.verify_key).ok
