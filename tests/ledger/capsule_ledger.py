"""A closed ledger with stored capsules — one current, one superseded by a rekey and its
successor — and the ways its capsule table can be damaged (for tests/ledger and tests/cli).

A rekey deletes the capsule it supersedes in its own database transaction; the superseded
row here is put back afterwards, as a ledger written before rekeys deleted them keeps it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from envelope import SigningKey
from ledger import Ledger
from ledger.schema import capsules
from ledger.wire import builders as b
from tests.ledger.conftest import FakeClock, build_world


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


FIRST = b"the first record's capsule"
OLD, NEW = b"the second record's first capsule", b"the second record's capsule after rekey"
FOREIGN = b"a capsule no record ever named"


@dataclass
class CapsuleLedger:
    url: str
    key: SigningKey
    record_id: str  # the world's record: capsule FIRST
    rekeyed_id: str  # a record whose capsule OLD was replaced by NEW
    rekey_index: int


def build_capsule_ledger(url: str) -> CapsuleLedger:
    key, clock = SigningKey.generate(), FakeClock()
    with Ledger.open(url, key, clock=clock) as ledger:
        world = build_world(ledger, clock)
        record = world.record_tx(world.dr, capsule_sha256=sha(OLD))
        ledger.submit(record, capsule=OLD)
        rekeyed_id = record.body["record_id"]
        rekey = b.rekey(world.patient, record_id=rekeyed_id, capsule_sha256=sha(NEW),
                        issued_at=clock())  # fmt: skip
        index = ledger.submit(rekey, capsule=NEW).index
        assert ledger.capsule(sha(OLD)) is None
    run_sql(url, capsules.insert().values(sha256=sha(OLD), data=OLD))
    return CapsuleLedger(url, key, world.record_id, rekeyed_id, index)


def run_sql(url: str, statement: sa.Executable) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(statement)
    engine.dispose()


def change_bytes(cl: CapsuleLedger) -> None:
    run_sql(cl.url, capsules.update().where(capsules.c.sha256 == sha(FIRST)).values(data=b"x"))


def move_row(cl: CapsuleLedger) -> None:
    """Store the first capsule's row under another key."""
    run_sql(
        cl.url, capsules.update().where(capsules.c.sha256 == sha(FIRST)).values(sha256="ab" * 32)
    )


def remove_row(cl: CapsuleLedger) -> None:
    run_sql(cl.url, capsules.delete().where(capsules.c.sha256 == sha(FIRST)))


def remove_rekeyed_row(cl: CapsuleLedger) -> None:
    run_sql(cl.url, capsules.delete().where(capsules.c.sha256 == sha(NEW)))


def insert_foreign_row(cl: CapsuleLedger) -> None:
    run_sql(cl.url, capsules.insert().values(sha256=sha(FOREIGN), data=FOREIGN))


Tamper = Callable[[CapsuleLedger], None]

# name, tamper, the damage (kind, where) each must be named by, and a phrase of its problem
TAMPERS: list[tuple[str, Tamper, list[tuple[str, str]], str]] = [
    ("changed bytes", change_bytes, [("capsule-hash", f"capsule {sha(FIRST)}")],
     "current capsule of record {record_id}"),
    ("row moved to another key", move_row,
     [("capsule-hash", "capsule " + "ab" * 32), ("capsule-missing", "record {record_id}")],
     "the row was moved from that key"),
    ("removed row", remove_row, [("capsule-missing", "record {record_id}")], "blob store"),
    ("removed row of a rekeyed record", remove_rekeyed_row,
     [("capsule-missing", "record {rekeyed_id}")], "set by the rekey at entry {rekey_index}"),
    ("unreferenced row", insert_foreign_row, [("capsule-unreferenced", f"capsule {sha(FOREIGN)}")],
     "no record names it"),
]  # fmt: skip


each_tamper = pytest.mark.parametrize(
    ("tamper", "damage", "phrase"), [pytest.param(t, d, p, id=n) for n, t, d, p in TAMPERS]
)
"""Parametrizes a test with each tamper, the damage it must cause and a phrase of it."""


def expected(cl: CapsuleLedger, text: str) -> str:
    return text.format(record_id=cl.record_id, rekeyed_id=cl.rekeyed_id, rekey_index=cl.rekey_index)


def expected_damage(cl: CapsuleLedger, damage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(kind, expected(cl, where)) for kind, where in damage]
