"""A live gateway with a cast of actors, for the SDK, command line and importer tests.

The gateway is real uvicorn on 127.0.0.1 (`ehrgate.embedded`, the same code the demo
runs), with an embedded SQLite ledger and a local blob directory. The cast: the first
admin, a doctor with read on lab-results and radiation-dose and the patient's key share,
a hospital system with write on every category, an auditor, and a registered patient.
Each actor's key file is written to disk for the command line.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ehrgate import Client
from ehrgate.embedded import embedded_gateway
from ehrgate.trust import LedgerPins
from envelope import IdentityKeys, PatientKeys, write_key_file

# Every command-line test logs in afresh; the default limit (30 a minute) is for people.
TEST_SETTINGS: dict[str, Any] = {"auth_rate_limit": 1_000_000}


@dataclass
class Cast:
    url: str
    data_dir: Path
    keys_dir: Path
    admin: IdentityKeys
    doctor: IdentityKeys
    system: IdentityKeys
    auditor: IdentityKeys
    patient: PatientKeys
    pins: LedgerPins

    def key_file(self, name: str) -> Path:
        return self.keys_dir / f"{name}.key"

    def client(self, keys: IdentityKeys | PatientKeys, **options: Any) -> Client:
        options.setdefault("pins", self.pins)
        return Client(self.url, keys, **options)

    @property
    def pseudonym(self) -> str:
        return self.patient.pseudonym

    def ledger_rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        """Rows of *sql* read straight from the gateway's SQLite ledger."""
        with sqlite3.connect(self.data_dir / "ledger.db") as conn:
            return list(conn.execute(sql, args))

    def stored_capsule(self, record_id: str) -> bytes:
        """The capsule the ledger keeps for *record_id*."""
        [(data,)] = self.ledger_rows(
            "SELECT c.data FROM ledger_capsules c JOIN state_records r "
            "ON c.sha256 = r.capsule_sha256 WHERE r.record_id = ?",
            record_id,
        )
        return bytes(data)


def at(period: str, day: int = 15) -> str:
    """Noon of *day* in the month *period* (YYYY-MM), as the ledger writes times."""
    return f"{period}-{day:02d}T12:00:00Z"


def new_patient(name: str = "Ana Müller") -> PatientKeys:
    return PatientKeys.generate({"name": name, "birth_date": "1961-04-12"})


def build_cast(url: str, data_dir: Path, admin: IdentityKeys, keys_dir: Path) -> Cast:
    keys_dir.mkdir(parents=True, exist_ok=True)
    cast = Cast(
        url=url,
        data_dir=data_dir,
        keys_dir=keys_dir,
        admin=admin,
        doctor=IdentityKeys.generate("dr-grey", "clinician"),
        system=IdentityKeys.generate("aria-export", "system"),
        auditor=IdentityKeys.generate("auditor-1", "auditor"),
        patient=new_patient(),
        pins=LedgerPins(),
    )
    with cast.client(admin) as client:
        for keys in (cast.doctor, cast.system, cast.auditor):
            client.enroll(keys.public())
    until = datetime.now(UTC) + timedelta(days=1)
    with cast.client(cast.patient) as patient:
        patient.register_patient()
        patient.grant(cast.system.id, rights=["write"], categories="all", not_after=until)
        patient.grant(
            cast.doctor.id,
            rights=["read"],
            categories=["lab-results", "radiation-dose"],
            not_after=until,
        )
        patient.share_key(cast.doctor.id)
    actors: tuple[tuple[str, IdentityKeys | PatientKeys], ...] = (
        ("admin", admin),
        ("doctor", cast.doctor),
        ("system", cast.system),
        ("auditor", cast.auditor),
        ("patient", cast.patient),
    )
    for name, actor in actors:
        write_key_file(keys_dir / f"{name}.key", actor)
    return cast


@contextmanager
def live_cast(directory: Path, **settings: Any) -> Iterator[Cast]:
    """A fresh gateway under *directory* and its cast."""
    with embedded_gateway(directory / "gateway", **{**TEST_SETTINGS, **settings}) as gateway:
        yield build_cast(gateway.url, gateway.data_dir, gateway.admin, directory / "keys")
