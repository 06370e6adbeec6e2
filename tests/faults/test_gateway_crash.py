"""Kill -9 of the gateway process under continuous uploads, at seeded random moments.

Several client threads upload (seal, stream the body, commit the record) against
`ehrgate serve` on SQLite and on PostgreSQL; the gateway is killed with SIGKILL and
restarted `EHRGATE_FAULT_KILLS` times. Afterwards: every upload the gateway acknowledged
(201 on the record) is listed, fetchable and decrypts to its original bytes; every record
on the ledger has its body in the store and its capsule in the database; `ehrgate ledger
verify` passes; the orphans the kills left (bodies stored, record never committed) are
exactly what `ehrgate gc --grace 0` removes. Pins: the store's write-then-rename with
fsync, the record committed only after its body is stored, receipts only after the
commit, the ledger's durability, and the GC's referenced set.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from envelope import IdentityKeys
from gateway.gc import referenced_blobs
from ledger import schema
from storage import open_store
from tests.faults.conftest import FIGURES
from tests.faults.gateway_client import (
    Actor,
    enroll,
    fetch_and_open,
    grant,
    listed_record_ids,
    register_patient,
)
from tests.faults.gateway_load import Upload, UploadLoad
from tests.faults.gateway_process import GatewayProcess
from tests.faults.harness import ehrgate
from tests.faults.settings import fault_kills, rng_for
from tests.postgres import scratch_database

pytestmark = pytest.mark.faults

UPLOADERS = 4


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the embedded SQLite ledger, else a scratch PostgreSQL database URL."""
    if request.param == "sqlite":
        yield None
    else:
        with scratch_database("ehrgate_faults") as url:
            yield url


def check_every_upload_reads_back(url: str, reader_keys: IdentityKeys, patient: object,
                                  uploads: list[Upload]) -> None:  # fmt: skip
    from envelope import PatientKeys

    assert isinstance(patient, PatientKeys)

    def check(chunk: list[Upload]) -> list[str]:
        wrong = []
        with httpx.Client(base_url=url, timeout=60) as client:
            reader = Actor(client, reader_keys)
            for upload in chunk:
                if fetch_and_open(reader, patient, upload.record_id) != upload.plaintext():
                    wrong.append(upload.record_id)
        return wrong

    chunks = [uploads[n::4] for n in range(4)]
    with ThreadPoolExecutor(4) as pool:
        wrong = [r for found in pool.map(check, chunks) for r in found]
    assert not wrong, f"{len(wrong)} acknowledged uploads do not decrypt to their bytes"


def test_acknowledged_uploads_survive_kill_9_of_the_gateway(
    gateway_database: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = rng_for(request.node.name)
    data_dir = tmp_path / "gateway"
    env = {"EHRGATE_DATABASE_URL": gateway_database} if gateway_database else {}
    gateway = GatewayProcess(data_dir, env=env)
    gateway.start()
    admin_keys = gateway.admin_keys()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        admin = Actor(client, admin_keys)
        uploaders = [enroll(admin, f"uploader-{n}", "clinician") for n in range(UPLOADERS)]
        patient = register_patient(admin, "Crash Test Patient")
        patient_actor = Actor(client, patient.identity)
        for uploader in uploaders:
            grant(patient_actor, patient.pseudonym, uploader.id, ["write"])

    load = UploadLoad(gateway.url, uploaders, patient, rng.randrange(2**32)).start()
    kills = fault_kills()
    try:
        for _ in range(kills):
            load.wait_for_acks(load.ack_count() + 1)
            time.sleep(rng.uniform(0.0, 0.5))
            gateway.kill()
            gateway.start()
        load.wait_for_acks(load.ack_count() + 1)
    finally:
        load.stop()
    assert not load.refusals, f"{dict(load.outcomes)}: {load.refusals[:5]}"
    acknowledged = list(load.acknowledged)

    # Listed, fetchable, and decrypting to the original bytes.
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        listed = listed_record_ids(Actor(client, patient.identity), patient.pseudonym)
    unlisted = {u.record_id for u in acknowledged} - listed
    assert not unlisted, f"{len(unlisted)} acknowledged uploads are not listed"
    check_every_upload_reads_back(gateway.url, patient.identity, patient, acknowledged)
    gateway.kill()

    # Offline: the ledger verifies; no record points at a missing body or capsule.
    db_url = gateway_database or f"sqlite:///{data_dir / 'ledger.db'}"
    verified = ehrgate("ledger", "verify", "--db", db_url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    store = open_store(gateway.store_url)
    stored = {info.sha256 for info in store.list()}
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            records = schema.records
            rows = conn.execute(sa.select(records.c.body_sha256, records.c.capsule_sha256)).all()
            capsules = {sha for (sha,) in conn.execute(sa.select(schema.capsules.c.sha256))}
    finally:
        engine.dispose()
    assert len(rows) >= len(acknowledged)
    assert not [body for body, _ in rows if body not in stored], "a record's body is missing"
    assert not [c for _, c in rows if c not in capsules], "a record's capsule is missing"
    assert not [c for _, c in rows if c not in stored], "a capsule's stored copy is missing"

    # Orphans (stored, never committed) are found and collected; nothing referenced goes.
    referenced = referenced_blobs(db_url)
    orphans = stored - referenced
    collected = ehrgate("gc", "--db", db_url, "--store", gateway.store_url, "--grace", "0")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    after = {info.sha256 for info in store.list()}
    store.close()
    assert after == stored & referenced
    assert all(body in after and capsule in after for body, capsule in rows)

    FIGURES["gateway kills survived"] += kills
    FIGURES["gateway acknowledged uploads verified"] += len(acknowledged)
    FIGURES["gateway orphans collected"] += len(orphans)
    FIGURES["gateway uploads interrupted (unavailable, retried)"] += load.outcomes["unavailable"]
