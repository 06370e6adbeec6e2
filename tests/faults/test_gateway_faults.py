"""Store and database faults seen through a running gateway (`ehrgate serve`).

A store that does not answer: 503 `service-unavailable` and no record on the ledger; with a
replica and a write quorum of one, uploads and reads go on; with a quorum of two, 503 again.
A store whose answer is corrupted on the wire: 502 `integrity-error`, or the healthy
replica's copy. PostgreSQL restarted under load, the SQLite file locked by another process,
a full disk: 503 while it lasts (never a 500), recovery without restarting the gateway,
and every acknowledged upload still reads back.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from envelope import PatientKeys
from tests.faults.conftest import FIGURES
from tests.faults.gateway_client import (
    Actor,
    Refused,
    Unavailable,
    enroll,
    fetch_and_open,
    grant,
    register_patient,
    upload,
)
from tests.faults.gateway_load import UploadLoad, plaintext
from tests.faults.gateway_process import GatewayProcess
from tests.faults.local import SqliteLocker, fill
from tests.faults.pgserver import PrivatePostgres
from tests.faults.proxy import Blackhole, Corrupt, FaultProxy
from tests.faults.settings import rng_for
from tests.seaweedfs import SeaweedFS

pytestmark = pytest.mark.faults

# Short timeouts, so that a silent store is a 503 within seconds; two attempts, so that the
# pause of about a second a busy SeaweedFS sometimes takes is retried, not a failed test.
FAST = "max_attempts=2&connect_timeout=1&read_timeout=1"


class Site:
    """A running gateway with an admin, a patient and an uploader allowed to write."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.gateway = GatewayProcess(data_dir, env=env)
        self.gateway.start()
        self.client = httpx.Client(base_url=self.gateway.url, timeout=30)
        self.admin = Actor(self.client, self.gateway.admin_keys())
        self.uploader_keys = enroll(self.admin, "uploader", "clinician")
        self.uploader = Actor(self.client, self.uploader_keys)
        self.patient: PatientKeys = register_patient(self.admin, "Fault Patient")
        self.reader = Actor(self.client, self.patient.identity)
        grant(self.reader, self.patient.pseudonym, self.uploader_keys.id, ["write"])

    def upload(self, data: bytes) -> str:
        return upload(self.uploader, self.patient, "lab-results", data)

    def read(self, record_id: str) -> bytes:
        return fetch_and_open(self.reader, self.patient, record_id)

    def record(self, record_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.reader.request("GET", f"/v1/records/{record_id}").json()
        return dict(answer.get("record", answer))

    def tree_size(self) -> int:
        head = self.client.get("/v1/ledger/head").json()
        return int(head.get("tree_head", head)["tree_size"])

    def record_count(self) -> int:
        answer = self.reader.request("GET", f"/v1/patients/{self.patient.pseudonym}/records")
        return len(answer.json()["records"])

    def close(self) -> None:
        self.client.close()
        self.gateway.kill()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    return rng_for(request.node.name)


@pytest.fixture
def proxy(seaweedfs: SeaweedFS) -> Iterator[FaultProxy]:
    host, port = seaweedfs.endpoint_url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port))) as running:
        yield running


def s3_url(server: SeaweedFS, bucket: str, endpoint: str, name: str = "s3-site") -> str:
    return (
        f"s3://{bucket}?endpoint_url={endpoint}&region={server.region}&name={name}"
        f"&access_key_id={server.access_key}&secret_access_key={server.secret_key}&{FAST}"
    )


def site_with_stores(tmp_path: Path, urls: list[str], quorum: int | None = None) -> Site:
    env = {"EHRGATE_STORE_URLS": ",".join(urls)}
    if quorum is not None:
        env["EHRGATE_WRITE_QUORUM"] = str(quorum)
    return Site(tmp_path / "gateway", env)


@contextmanager
def proxied_site(
    server: SeaweedFS,
    bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    *,
    replica: bool = False,
    quorum: int | None = None,
) -> Iterator[Site]:
    """A gateway whose S3 store sits behind *proxy* (and, with *replica*, a local disk store
    after it); the proxy is healed and the gateway stopped afterwards."""
    urls = [s3_url(server, bucket, proxy.url)]
    if replica:
        urls.append(f"file://{tmp_path / 'disk'}?name=disk")
    site = site_with_stores(tmp_path, urls, quorum)
    try:
        yield site
    finally:
        proxy.fault = None
        site.close()


# --- store faults -----------------------------------------------------------------------------


@pytest.mark.seaweedfs
def test_a_store_that_does_not_answer_is_503_and_leaves_no_record(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    with proxied_site(seaweedfs, seaweedfs_bucket, proxy, tmp_path) as site:
        size = site.tree_size()
        proxy.fault = Blackhole()
        with pytest.raises(Unavailable, match="service-unavailable"):
            site.upload(plaintext(rng.randrange(2**32), 20_000))
        proxy.fault = None
        assert site.tree_size() == size, "a failed upload changed the ledger"
        data = plaintext(rng.randrange(2**32), 20_000)
        assert site.read(site.upload(data)) == data


@pytest.mark.seaweedfs
def test_with_a_replica_and_quorum_one_uploads_and_reads_go_on_while_a_store_is_silent(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    with proxied_site(seaweedfs, seaweedfs_bucket, proxy, tmp_path, replica=True, quorum=1) as site:
        before = plaintext(rng.randrange(2**32), 50_000)
        first = site.upload(before)
        proxy.fault = Blackhole()
        assert site.read(first) == before
        during = plaintext(rng.randrange(2**32), 50_000)
        second = site.upload(during)
        assert [loc.split("/")[2] for loc in site.record(second)["locators"]] == ["disk"]
        assert site.read(second) == during


@pytest.mark.seaweedfs
def test_with_quorum_two_a_silent_store_is_503_and_leaves_no_record(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    with proxied_site(seaweedfs, seaweedfs_bucket, proxy, tmp_path, replica=True, quorum=2) as site:
        size = site.tree_size()
        proxy.fault = Blackhole()
        with pytest.raises(Unavailable, match="service-unavailable"):
            site.upload(plaintext(rng.randrange(2**32), 20_000))
        proxy.fault = None
        assert site.tree_size() == size


def _stored_marker(server: SeaweedFS, bucket: str) -> bytes:
    """32 bytes from the middle of the one sealed body in *bucket*."""
    with closing(server.client()) as client:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        bodies = [client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    body = max(bodies, key=len)  # the body, not the capsule's copy
    return body[len(body) // 2 : len(body) // 2 + 32]


@pytest.mark.seaweedfs
def test_a_body_corrupted_on_the_wire_is_502_or_served_by_the_replica(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    with proxied_site(seaweedfs, seaweedfs_bucket, proxy, tmp_path) as site:
        record_id = site.upload(plaintext(rng.randrange(2**32), 200_000))
        proxy.fault = fault = Corrupt(_stored_marker(seaweedfs, seaweedfs_bucket))
        with pytest.raises(Refused) as refused:
            site.reader.request("GET", f"/v1/records/{record_id}/body")
        assert fault.hits >= 1
        assert refused.value.status == 502
        assert "integrity-error" in refused.value.problem


@pytest.mark.seaweedfs
def test_a_body_corrupted_on_the_wire_is_served_from_the_healthy_replica(
    seaweedfs: SeaweedFS, seaweedfs_bucket: str, proxy: FaultProxy, tmp_path: Path,
    rng: random.Random,
) -> None:  # fmt: skip
    with proxied_site(seaweedfs, seaweedfs_bucket, proxy, tmp_path, replica=True) as site:
        data = plaintext(rng.randrange(2**32), 200_000)
        record_id = site.upload(data)
        proxy.fault = fault = Corrupt(_stored_marker(seaweedfs, seaweedfs_bucket))
        assert site.read(record_id) == data
        assert fault.hits >= 1


# --- database faults ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_postgresql_restarted_under_gateway_load_is_503_then_recovers(
    tmp_path: Path, rng: random.Random
) -> None:
    with PrivatePostgres.start() as server:
        url = server.create_database("ledger")
        site = Site(tmp_path / "gateway", {"EHRGATE_DATABASE_URL": url})
        first_id = site.upload(plaintext(rng.randrange(2**32), 1000))
        seed = rng.randrange(2**32)
        load = UploadLoad(
            site.gateway.url, [site.uploader_keys], site.patient, seed, max_size=20_000
        ).start()
        try:
            for _ in range(2):
                load.wait_for_acks(load.ack_count() + 5)
                server.stop(mode=rng.choice(["immediate", "fast"]))
                time.sleep(rng.uniform(0.5, 1.5))
                # Reads that need the database answer 503 too, never 500.
                with pytest.raises(Unavailable, match="service-unavailable"):
                    site.reader.request("GET", f"/v1/records/{first_id}/capsule")
                server.restart()
                load.wait_for_acks(load.ack_count() + 5)
        finally:
            load.stop()
        try:
            assert not load.refusals, f"{dict(load.outcomes)}: {load.refusals[:5]}"
            assert load.outcomes["unavailable"] > 0, "the restarts were never noticed"
            for done in load.acknowledged:
                assert site.read(done.record_id) == done.plaintext()
        finally:
            site.close()
    FIGURES["gateway postgresql restarts survived"] += 2


def test_a_sqlite_file_locked_by_another_process_is_503_then_recovers(
    tmp_path: Path, rng: random.Random
) -> None:
    database = tmp_path / "gateway" / "ledger.db"
    site = Site(tmp_path / "gateway", {"EHRGATE_DATABASE_URL": f"sqlite:///{database}?timeout=0.5"})
    try:
        first = plaintext(rng.randrange(2**32), 10_000)
        first_id = site.upload(first)
        locker = SqliteLocker(database)
        try:
            with pytest.raises(Unavailable, match="service-unavailable"):
                site.upload(plaintext(rng.randrange(2**32), 10_000))
        finally:
            locker.release()
        second = plaintext(rng.randrange(2**32), 10_000)
        assert site.read(site.upload(second)) == second
        assert site.read(first_id) == first
    finally:
        site.close()


def test_a_full_disk_is_503_then_recovers_when_space_is_freed(
    small_disk: Path,
    rng: random.Random,
) -> None:
    site = Site(small_disk / "gateway", {})
    try:
        before = plaintext(rng.randrange(2**32), 10_000)
        before_id = site.upload(before)
        filler = fill(small_disk)

        def upload_until_refused() -> None:
            for _ in range(50):  # the database may still have room for a few pages
                site.upload(plaintext(rng.randrange(2**32), 100_000))

        with pytest.raises(Unavailable, match="service-unavailable"):
            upload_until_refused()
        os.unlink(filler)
        after = plaintext(rng.randrange(2**32), 10_000)
        assert site.read(site.upload(after)) == after
        assert site.read(before_id) == before
    finally:
        site.close()
