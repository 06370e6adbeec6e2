"""`erase_blobs` and `collect_garbage(erased=...)`: every copy goes, wherever it is, and a
store that is down is named without stopping the others."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from storage import BlobNotFound, StorageError, collect_garbage, erase_blobs, open_store
from storage._cid import raw_cid_of_sha256, raw_cid_sha256
from tests.faults.proxy import closed_port
from tests.jsipfs import JsIpfs

CAPSULE = b"a small capsule, content addressed"
BODY = b"a sealed body" * 1000


def _locals(tmp_path: Path) -> list[str]:
    return [f"file://{tmp_path / name}?name={name}" for name in ("disk-a", "disk-b")]


def test_every_copy_in_every_member_is_deleted(tmp_path: Path) -> None:
    store = open_store(_locals(tmp_path))
    body, capsule, kept = (store.put(io.BytesIO(x)) for x in (BODY, CAPSULE, b"another"))
    report = erase_blobs(store, {body.sha256: list(body.locators), capsule.sha256: []})
    assert report.complete
    # the body under each locator the ledger knows, the capsule under the key of its hash
    assert len(report.deleted) == 4
    for url in _locals(tmp_path):
        member = open_store(url)
        assert {i.sha256 for i in member.list()} == {kept.sha256}
        member.close()
    # erasing again finds nothing and is not an error
    assert erase_blobs(store, {body.sha256: list(body.locators)}).complete
    store.close()


def test_a_store_that_is_down_is_named_and_the_others_are_erased(tmp_path: Path) -> None:
    down = (
        f"s3://gone?endpoint_url=http://127.0.0.1:{closed_port()}&region=us-east-1"
        "&access_key_id=x&secret_access_key=y&max_attempts=1&connect_timeout=1&name=down"
    )
    local = open_store(_locals(tmp_path)[0])
    blob = local.put(io.BytesIO(CAPSULE))
    local.close()
    store = open_store([_locals(tmp_path)[0], down], write_quorum=1)
    report = erase_blobs(store, {blob.sha256: []})
    assert not report.complete
    [(locator, problem)] = report.failed
    assert locator.startswith("s3://down/")
    assert problem
    assert report.deleted == [f"file://disk-a/blobs/{blob.sha256[:2]}/{blob.sha256}"]
    store.close()


def test_gc_deletes_erased_blobs_whatever_their_age(tmp_path: Path) -> None:
    store = open_store(_locals(tmp_path)[0])
    erased, young = store.put(io.BytesIO(CAPSULE)), store.put(io.BytesIO(b"an orphan, young"))
    report = collect_garbage(store, set(), grace=timedelta(days=1), erased={erased.sha256})
    assert report.deleted == erased.locators
    assert {i.sha256 for i in store.list()} == {young.sha256}
    # a referenced blob is never deleted, even if an erased record also named it
    shared = store.put(io.BytesIO(b"shared"))
    report = collect_garbage(store, {shared.sha256}, grace=timedelta(0), erased={shared.sha256})
    assert shared.sha256 in {i.sha256 for i in store.list()}
    store.close()


def test_the_cid_of_a_raw_block_is_computed_from_its_hash() -> None:
    sha = "ab" * 32
    assert raw_cid_sha256(raw_cid_of_sha256(sha)) == sha


def test_js_ipfs_unpins_and_removes_a_capsule_known_only_by_its_hash(jsipfs: JsIpfs) -> None:
    store = open_store(jsipfs.store_url(name="js"))
    try:
        capsule, body = store.put(io.BytesIO(CAPSULE)), store.put(io.BytesIO(BODY * 300))
        report = erase_blobs(store, {capsule.sha256: [], body.sha256: list(body.locators)})
        assert report.complete
        held = {i.sha256 for i in store.list()}
        assert not {capsule.sha256, body.sha256} & held
        with pytest.raises((BlobNotFound, StorageError)):
            b"".join(store.get(capsule.locators, sha256=capsule.sha256))
        # again, and a blob the node never had: nothing there is as good as deleted
        never = "cd" * 32
        assert erase_blobs(store, {capsule.sha256: [], never: []}).complete
    finally:
        store.close()
