"""The IPFS store speaks the Kubo RPC contract: POST only, multipart add, NDJSON, Kubo errors."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from storage import (
    BlobNotFound,
    IntegrityError,
    StoreUnavailable,
    collect_garbage,
)
from storage._config import split_locator
from storage.ipfs import IpfsStore, parse_pin_name, raw_cid_sha256
from tests.storage.kubo_mock import CHUNK, KuboMock, cid_of


@pytest.fixture
def kubo() -> KuboMock:
    return KuboMock()


@pytest.fixture
def store(kubo: KuboMock) -> IpfsStore:
    return IpfsStore.from_url("ipfs+http://127.0.0.1:5001?name=kubo-a", transport=kubo.transport())


def _cid(locator: str) -> str:
    return split_locator(locator)[1]


def test_the_contract_mock_refuses_get_like_kubo() -> None:
    with httpx.Client(transport=KuboMock().transport()) as client:
        answer = client.get("http://127.0.0.1:5001/api/v0/version")
    assert answer.status_code == 405


def test_every_call_is_a_post_under_api_v0(kubo: KuboMock, store: IpfsStore) -> None:
    store.check()
    blob = store.put(io.BytesIO(b"x" * 1000))
    b"".join(store.get(blob.locators, sha256=blob.sha256))
    store.head(blob.locators[0])
    list(store.list())
    store.delete(blob.locators[0])
    assert kubo.requests
    assert {request.method for request in kubo.requests} == {"POST"}
    assert all(request.url.path.startswith("/api/v0/") for request in kubo.requests)


def test_add_streams_one_multipart_file_part_with_cidv1_raw_leaves_and_pin(
    kubo: KuboMock, store: IpfsStore
) -> None:
    store.put(io.BytesIO(b"body"))
    add = next(r for r in kubo.requests if r.url.path == "/api/v0/add")
    assert add.url.params["cid-version"] == "1"
    assert add.url.params["raw-leaves"] == "true"
    assert add.url.params["pin"] == "true"
    assert add.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert add.headers.get("transfer-encoding") == "chunked"  # streamed, never buffered whole
    assert b'name="file"' in add.content


def test_a_small_body_gets_the_raw_cid_kubo_gives_it(store: IpfsStore) -> None:
    body = b"pdf" * 100
    blob = store.put(io.BytesIO(body))
    cid = _cid(blob.locators[0])
    assert cid.startswith("bafkrei")
    assert cid == cid_of(body)
    assert raw_cid_sha256(cid) == hashlib.sha256(body).hexdigest()


def test_a_large_body_gets_a_dag_cid_and_round_trips(store: IpfsStore) -> None:
    body = bytes(range(256)) * (3 * CHUNK // 256)
    blob = store.put(io.BytesIO(body))
    assert _cid(blob.locators[0]).startswith("bafybei")
    assert b"".join(store.get(blob.locators, sha256=blob.sha256, size=blob.size)) == body


def test_the_pin_is_named_with_sha256_size_and_time(kubo: KuboMock, store: IpfsStore) -> None:
    blob = store.put(io.BytesIO(b"named"))
    parsed = parse_pin_name(kubo.pins[_cid(blob.locators[0])])
    assert parsed is not None
    sha, size, stored = parsed
    assert (sha, size) == (blob.sha256, 5)
    assert abs(stored - datetime.now(UTC)) < timedelta(seconds=5)


def test_a_node_answering_the_wrong_cid_is_caught_and_nothing_stays_pinned(
    kubo: KuboMock, store: IpfsStore
) -> None:
    kubo.lie_about_cids = True
    with pytest.raises(IntegrityError, match="did not store what was sent"):
        store.put(io.BytesIO(b"small body"))
    assert kubo.pins == {}


def test_progress_lines_in_the_add_answer_are_skipped() -> None:
    def kubo(request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path == "/api/v0/add":
            lines = (
                b'{"Name":"","Bytes":262144}\n{"Name":"","Bytes":300000}\n'
                b'{"Name":"body","Hash":"'
                + cid_of(b"z" * 300000).encode()
                + b'","Size":"300100"}\n'
            )
            return httpx.Response(200, content=lines)
        if request.url.path == "/api/v0/version":
            return httpx.Response(200, json={"Version": "0.38.1"})
        return httpx.Response(200, json={"Pins": []})

    store = IpfsStore.from_url("ipfs+http://127.0.0.1:5001", transport=httpx.MockTransport(kubo))
    blob = store.put(io.BytesIO(b"z" * 300000))
    assert blob.locators == (f"ipfs://{cid_of(b'z' * 300000)}",)


def test_an_error_object_inside_the_add_stream_is_an_error() -> None:
    def kubo(request: httpx.Request) -> httpx.Response:
        request.read()
        lines = (
            b'{"Name":"","Bytes":1}\n{"Message":"blockstore: disk full","Code":0,"Type":"error"}\n'
        )
        return httpx.Response(200, content=lines)

    store = IpfsStore.from_url("ipfs+http://127.0.0.1:5001", transport=httpx.MockTransport(kubo))
    with pytest.raises(StoreUnavailable, match="disk full"):
        store.put(io.BytesIO(b"x"))


def test_a_kubo_error_answer_to_add_is_unavailable_with_its_message(
    kubo: KuboMock, store: IpfsStore
) -> None:
    kubo.fail_next("add", "blockstore: write: no space left on device")
    with pytest.raises(StoreUnavailable, match="no space left"):
        store.put(io.BytesIO(b"x"))


def test_a_failed_pin_naming_leaves_nothing_pinned(kubo: KuboMock, store: IpfsStore) -> None:
    kubo.fail_next("pin/add", "pin: context canceled")
    with pytest.raises(StoreUnavailable):
        store.put(io.BytesIO(b"x"))
    assert kubo.pins == {}


def test_cat_asks_the_node_not_to_search_the_swarm(kubo: KuboMock, store: IpfsStore) -> None:
    blob = store.put(io.BytesIO(b"x"))
    b"".join(store.get(blob.locators, sha256=blob.sha256))
    cat = next(r for r in kubo.requests if r.url.path == "/api/v0/cat")
    assert cat.url.params["offline"] == "true"


def test_a_body_the_node_does_not_hold_is_not_found(store: IpfsStore) -> None:
    missing = cid_of(b"never added")
    with pytest.raises(BlobNotFound):
        store.get((f"ipfs://{missing}",), sha256=hashlib.sha256(b"never added").hexdigest())


def test_get_without_an_ipfs_locator_is_not_found(store: IpfsStore) -> None:
    with pytest.raises(BlobNotFound, match="none of the locators"):
        store.get(("s3://bucket/blobs/00/" + "0" * 64,), sha256="0" * 64)


def test_a_node_that_is_down_is_unavailable(kubo: KuboMock, store: IpfsStore) -> None:
    blob = store.put(io.BytesIO(b"x"))
    kubo.down = True
    with pytest.raises(StoreUnavailable, match="cannot reach Kubo"):
        store.get(blob.locators, sha256=blob.sha256)
    with pytest.raises(StoreUnavailable):
        store.put(io.BytesIO(b"y"))
    with pytest.raises(StoreUnavailable):
        store.check()


def test_pins_of_other_software_are_neither_listed_nor_collected(
    kubo: KuboMock, store: IpfsStore
) -> None:
    other = cid_of(b"someone else's file")
    kubo.blocks[other] = b"someone else's file"
    kubo.pins[other] = "family photos"
    ours = store.put(io.BytesIO(b"ours"))
    assert [info.sha256 for info in store.list()] == [ours.sha256]
    report = collect_garbage(store, set(), grace=timedelta(0), now=datetime.now(UTC) + timedelta(1))
    assert report.deleted == ours.locators
    assert kubo.pins == {other: "family photos"}
    with pytest.raises(BlobNotFound, match="not as an ehrgate body"):
        store.head(f"ipfs://{other}")


def test_delete_makes_the_body_unreadable_on_this_node(kubo: KuboMock, store: IpfsStore) -> None:
    blob = store.put(io.BytesIO(b"erase me"))
    store.delete(blob.locators[0])
    assert _cid(blob.locators[0]) not in kubo.blocks
    with pytest.raises(BlobNotFound):
        store.get(blob.locators, sha256=blob.sha256)
