"""Fixtures for the ledger tests: a settable clock, a ledger on each database, a small world
of identities (admin, clinicians, a system, a patient with a registered pseudonym)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from envelope import IdentityKeys, SigningKey
from ledger import Ledger, LedgerSigner, Transaction, schema
from ledger.migrate import upgrade
from ledger.wire import builders as b

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def pseudonym_for(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


@dataclass
class World:
    """A bootstrapped ledger and the actors in it."""

    ledger: Ledger
    clock: FakeClock
    gateway: LedgerSigner
    admin: IdentityKeys
    admin2: IdentityKeys
    dr: IdentityKeys
    dr_other: IdentityKeys
    dr_suspended: IdentityKeys
    system: IdentityKeys
    auditor: IdentityKeys
    patient: IdentityKeys
    patient2: IdentityKeys
    pseudonym: str
    pseudonym2: str
    grant_id: str = ""
    record_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def record_tx(self, actor: b.Actor, **overrides: Any) -> Transaction:
        fields: dict[str, Any] = {
            "pseudonym": self.pseudonym,
            "category": "lab-results",
            "body_sha256": "ab" * 32,
            "size": 1234,
            "locators": ["local:blobs/ab/" + "ab" * 32],
            "capsule_sha256": "cd" * 32,
            "content_type": "application/pdf",
            "created_at": self.clock(),
            "issued_at": self.clock(),
        }
        fields.update(overrides)
        return b.record(actor, **fields)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_url: str) -> str:
    upgrade(postgres_url)
    return postgres_url


def empty_postgres_ledger(url: str) -> None:
    """Reset the session's migrated PostgreSQL database to an empty ledger (fast: no
    CREATE DATABASE per test)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        # DELETE, not TRUNCATE: for a handful of rows it avoids TRUNCATE's file work.
        for table in schema.metadata.sorted_tables:
            conn.execute(table.delete())
        conn.execute(schema.head.insert().values(id=1, height=-1, tree_size=0))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path) -> str:
    """A migrated, empty ledger database of each kind (overrides the project-wide fixture,
    which gives an empty database without the schema)."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copyfile(migrated_sqlite, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("migrated_postgres")
    empty_postgres_ledger(url)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def ledger(database_url: str, ledger_key: SigningKey, clock: FakeClock) -> Iterator[Ledger]:
    with Ledger.open(database_url, ledger_key, clock=clock) as opened:
        yield opened


def build_world(ledger: Ledger, clock: FakeClock) -> World:
    def ident(name: str, role: str) -> IdentityKeys:
        return IdentityKeys.generate(name, role)

    world = World(
        ledger=ledger,
        clock=clock,
        gateway=ledger.signer,
        admin=ident("admin-1", "admin"),
        admin2=ident("admin-2", "admin"),
        dr=ident("dr-house", "clinician"),
        dr_other=ident("dr-wilson", "clinician"),
        dr_suspended=ident("dr-gone", "clinician"),
        system=ident("aria-export", "system"),
        auditor=ident("auditor-1", "auditor"),
        # A patient's identity is named by the pseudonym it registers first.
        patient=ident(pseudonym_for("anna"), "patient"),
        patient2=ident(pseudonym_for("ben"), "patient"),
        pseudonym=pseudonym_for("anna"),
        pseudonym2=pseudonym_for("ben"),
    )
    ledger.bootstrap(world.admin.public())
    for who in (world.admin2, world.dr, world.dr_other, world.dr_suspended, world.system,
                world.auditor):  # fmt: skip
        ledger.submit(b.enroll(world.admin, who.public(), issued_at=clock()))
    ledger.submit(b.suspend(world.admin, world.dr_suspended.id, "left", issued_at=clock()))
    ledger.submit(
        b.register_patient(world.patient, world.pseudonym, b"anna-record-key", issued_at=clock())
    )
    ledger.submit(
        b.register_patient(world.patient2, world.pseudonym2, b"ben-record-key", issued_at=clock())
    )
    grant = b.grant(
        world.patient,
        pseudonym=world.pseudonym,
        grantee=world.dr.id,
        rights=["read", "write"],
        categories=["lab-results"],
        not_before=clock() - timedelta(hours=1),
        not_after=clock() + timedelta(hours=1),
        issued_at=clock(),
    )
    ledger.submit(grant)
    world.grant_id = grant.body["permission_id"]
    system_grant = b.grant(
        world.patient,
        pseudonym=world.pseudonym,
        grantee=world.system.id,
        rights=["write"],
        categories="all",
        not_before=clock() - timedelta(hours=1),
        not_after=clock() + timedelta(days=365),
        issued_at=clock(),
    )
    ledger.submit(system_grant)
    # The record's capsule is stored with it, as the gateway does, so the ledger verifies.
    capsule = b"the first record's capsule"
    record = world.record_tx(world.dr, capsule_sha256=hashlib.sha256(capsule).hexdigest())
    ledger.submit(record, capsule=capsule)
    world.record_id = record.body["record_id"]
    return world


@pytest.fixture
def world(ledger: Ledger, clock: FakeClock) -> World:
    return build_world(ledger, clock)
