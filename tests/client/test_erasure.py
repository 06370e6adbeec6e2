"""Erasure end to end, through a live gateway, on each database and blob store.

A record is uploaded by the SDK and read by a doctor; the patient erases it. Then,
bypassing the gateway, the database and every configured store (local directory, S3 on
moto and on a real SeaweedFS, a js-ipfs node) hold no copy of its capsule or body, and the
patient's own K opens nothing that remains, even with a copy of the body kept from before.
The gateway answers 410 Gone to every read of it, the SDK raises RecordErased, the ledger
verifies (from the database and from the gateway) and reports the record erased.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from moto import mock_aws

from ehrgate.cli import cli
from ehrgate.errors import Conflict, RecordErased
from envelope import InvalidEnvelope, open_body, open_with_patient_key
from ledger.wire.problems import RECORD_ERASED
from storage import BlobStore, StorageError, open_store
from storage._cid import raw_cid_of_sha256
from tests.client.live import Cast, live_cast
from tests.gateway.helpers import login

MOTO_BUCKET = "ehrgate-erasure"


@dataclass
class Site:
    cast: Cast
    database_url: str
    store_urls: list[str]

    def rows(self, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        finally:
            engine.dispose()

    def stores(self) -> Iterator[BlobStore]:
        for url in self.store_urls:
            store = open_store(url)
            try:
                yield store
            finally:
                store.close()


def _config(request: pytest.FixtureRequest, data: Path) -> dict[str, Any]:
    """Gateway settings of the configuration *request.param* names."""
    local = f"file://{data / 'blobs'}?name=disk"
    if request.param == "sqlite-local":
        return {"store_urls": [local]}
    if request.param == "sqlite-moto":
        return {"store_urls": [local, f"s3://{MOTO_BUCKET}?region=us-east-1&name=moto"]}
    weed = request.getfixturevalue("seaweedfs")
    bucket = request.getfixturevalue("seaweedfs_bucket")
    ipfs = request.getfixturevalue("jsipfs")
    return {
        "database_url": request.getfixturevalue("fresh_postgres_url"),
        "store_urls": [local, weed.store_url(bucket, name="weed"), ipfs.store_url(name="js")],
    }


@pytest.fixture(
    params=[
        "sqlite-local",
        "sqlite-moto",
        pytest.param("postgres-seaweedfs-jsipfs", marks=[pytest.mark.postgres,
                                                         pytest.mark.seaweedfs]),
    ]
)  # fmt: skip
def site(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    with ExitStack() as stack:
        if request.param == "sqlite-moto":
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            stack.enter_context(mock_aws())
            s3 = stack.enter_context(closing(boto3.client("s3", region_name="us-east-1")))
            s3.create_bucket(Bucket=MOTO_BUCKET)
        settings = _config(request, tmp_path)
        cast = stack.enter_context(live_cast(tmp_path, **settings))
        url = settings.get("database_url") or f"sqlite:///{cast.data_dir / 'ledger.db'}"
        yield Site(cast, url, settings["store_urls"])


def _upload(cast: Cast, text: bytes) -> str:
    with cast.client(cast.system) as system:
        done = system.upload(io.BytesIO(text), pseudonym=cast.pseudonym,
                             category="lab-results", filename="lab.pdf")  # fmt: skip
    return done.record.record_id


def _raw(site: Site, record_id: str) -> tuple[str, str, bytes, bytes]:
    """(body SHA-256, capsule SHA-256, body, capsule) of a record, straight from the
    database and the first store."""
    [(body_sha, capsule_sha)] = site.rows(
        "SELECT body_sha256, capsule_sha256 FROM state_records WHERE record_id = :r",
        r=record_id,
    )
    [(capsule,)] = site.rows("SELECT data FROM ledger_capsules WHERE sha256 = :s", s=capsule_sha)
    store = open_store(site.store_urls[0])
    try:
        [locator] = [i.locator for i in store.list() if i.sha256 == body_sha]
        body = b"".join(store.get([locator], sha256=body_sha))
    finally:
        store.close()
    return body_sha, capsule_sha, body, bytes(capsule)


def _held(site: Site) -> list[tuple[str, set[str]]]:
    """Each store's name and the SHA-256 of every blob it holds."""
    return [(store.name, {info.sha256 for info in store.list()}) for store in site.stores()]


def _everything_left(site: Site) -> list[bytes]:
    """Every capsule row left in the database and every blob left in every store."""
    left = [bytes(data) for (data,) in site.rows("SELECT data FROM ledger_capsules")]
    for store in site.stores():
        for info in store.list():
            left.append(b"".join(store.get([info.locator], sha256=info.sha256)))
    return left


def test_after_erasure_nobody_opens_the_record_and_the_ledger_verifies(
    site: Site, tmp_path: Path
) -> None:
    cast = site.cast
    erased_id = _upload(cast, b"%PDF-1.4 the lab result to erase")
    kept_id = _upload(cast, b"%PDF-1.4 a lab result that stays")
    body_sha, capsule_sha, body, capsule = _raw(site, erased_id)
    with cast.client(cast.doctor) as doctor:
        assert doctor.fetch_bytes(erased_id)[1] == b"%PDF-1.4 the lab result to erase"
    for name, held in _held(site):  # every store has a copy of the body and the capsule
        assert {body_sha, capsule_sha} <= held, name

    with cast.client(cast.patient) as patient:
        erased = patient.erase(erased_id)
        assert erased.record_ids == (erased_id,)
        assert (erased.scope, erased.pending, erased.complete) == ("record", (), True)
        assert erased.deleted >= 1 + 2 * len(site.store_urls)  # the row, and each copy

        # Nothing is left of it, in the database or in any store.
        assert site.rows("SELECT 1 FROM ledger_capsules WHERE sha256 = :s", s=capsule_sha) == []
        for name, held in _held(site):
            assert not {body_sha, capsule_sha} & held, name
        for store in site.stores():
            if store.name == "js":  # the IPFS node removed the blocks, not only the pins
                with pytest.raises(StorageError):
                    b"".join(store.get([f"ipfs://{raw_cid_of_sha256(capsule_sha)}"],
                                       sha256=capsule_sha))  # fmt: skip
        # The patient's own K opens nothing that remains, even with the body in hand.
        k = cast.patient.patient_key
        assert open_with_patient_key(capsule, k, cast.pseudonym)  # it did, before
        for data in _everything_left(site):
            try:
                opened = open_with_patient_key(data, k, cast.pseudonym)
            except InvalidEnvelope:
                continue
            with pytest.raises(InvalidEnvelope):
                b"".join(open_body([body], opened))

        # Erasing it again is a clear conflict, and changes nothing.
        with pytest.raises(Conflict, match="was erased by entry") as again:
            patient.erase(erased_id)
        assert again.value.code == "already-erased"
        # The listing leaves it out; the other record is untouched.
        assert [r.record_id for r in patient.records(cast.pseudonym)] == [kept_id]

    # Every read of it answers 410 Gone with a problem, to the doctor and the patient.
    with httpx.Client(base_url=cast.url, timeout=30) as http:
        for who in (cast.doctor, cast.patient.identity):
            headers = {"Authorization": f"Bearer {login(http, who)}"}
            for path in ("", "/proof", "/capsule", "/body"):
                answer = http.get(f"/v1/records/{erased_id}{path}", headers=headers)
                assert answer.status_code == 410, (path, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert answer.json()["type"] == RECORD_ERASED.uri
    with cast.client(cast.doctor) as doctor:
        with pytest.raises(RecordErased, match="erased") as gone:
            doctor.fetch(erased_id, tmp_path)
        assert gone.value.status == 410
        assert doctor.fetch_bytes(kept_id)[1] == b"%PDF-1.4 a lab result that stays"
    with cast.client(cast.patient) as patient:
        refused = [e for e in patient.audit() if e.record_id == erased_id and
                   e.decision == "denied"]  # fmt: skip
        assert {e.actor for e in refused} == {cast.doctor.id, cast.patient.identity.id}
        assert all("erased" in e.reason for e in refused)

    # The ledger verifies, from the database and from the gateway, and names the erasure.
    runner = CliRunner()
    local = runner.invoke(cli, ["ledger", "verify", "--db", site.database_url, "--json"])
    assert local.exit_code == 0, local.output
    report = json.loads(local.output)
    assert report["ok"]
    assert [e["record_id"] for e in report["erased"]] == [erased_id]
    assert [n["kind"] for n in report["capsules"]["notes"]] == ["capsule-erased"]
    remote = runner.invoke(cli, ["--gateway", cast.url, "--as", str(cast.key_file("auditor")),
                                 "ledger", "verify"])  # fmt: skip
    assert remote.exit_code == 0, remote.output
    assert f"erased record {erased_id} (entry {erased.receipt.index})" in remote.output
