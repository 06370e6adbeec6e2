"""The IPFS store speaks the Kubo RPC contract (POST only, multipart add, NDJSON, Kubo
errors) against the contract mock, and copes with js-ipfs's differences on a real node."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from storage import (
    BlobNotFound,
    IntegrityError,
    StoreUnavailable,
    collect_garbage,
)
from storage._cid import normalise_cid
from storage._config import split_locator
from storage.ipfs import IpfsStore, parse_pin_name, raw_cid_sha256
from tests.jsipfs import JsIpfs
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
        if request.url.path == "/api/v0/version":
            return httpx.Response(200, json={"Version": "0.38.1"})
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


def test_every_call_about_a_cid_carries_a_node_side_timeout(
    kubo: KuboMock, store: IpfsStore
) -> None:
    blob = store.put(io.BytesIO(b"x" * 1000))
    b"".join(store.get(blob.locators, sha256=blob.sha256))
    store.head(blob.locators[0])
    list(store.list())
    store.delete(blob.locators[0])
    calls = [r for r in kubo.requests if not r.url.path.endswith("/version")]
    assert {r.url.path.removeprefix("/api/v0/") for r in calls} == {
        "add",
        "pin/add",
        "pin/ls",
        "cat",
        "pin/rm",
        "block/rm",
    }
    assert {r.url.params.get("timeout") for r in calls} == {"600s"}


def test_base58btc_cids_and_numeric_sizes_in_answers_become_base32_locators() -> None:
    body = b"answered in base58btc"
    raw = cid_of(body)  # base32
    base58 = "z" + _base58(base64.b32decode(raw[1:].upper() + "=" * (-len(raw[1:]) % 8)))
    pins: dict[str, str] = {}

    def js_ipfs(request: httpx.Request) -> httpx.Response:
        request.read()
        endpoint = request.url.path.removeprefix("/api/v0/")
        if endpoint == "version":
            return httpx.Response(200, json={"Version": "0.18.1", "ipfs-core": "0.18.1"})
        if endpoint == "add":
            return httpx.Response(200, json={"Name": base58, "Hash": base58, "Size": len(body)})
        if endpoint == "pin/add":
            pins[base58] = json.loads(request.url.params["metadata"])["name"]
            return httpx.Response(200, json={"Pins": [base58]})
        entries = {key: {"Type": "recursive", "Metadata": {"name": n}} for key, n in pins.items()}
        return httpx.Response(200, json={"Keys": entries})

    store = IpfsStore.from_url("ipfs+http://127.0.0.1:5002", transport=httpx.MockTransport(js_ipfs))
    blob = store.put(io.BytesIO(body))
    assert blob.locators == (f"ipfs://{raw}",)
    assert store.head(f"ipfs://{raw}").sha256 == hashlib.sha256(body).hexdigest()
    assert store.head(f"ipfs://{base58}").size == len(body)


def _base58(raw: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number, out = int.from_bytes(raw, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = alphabet[digit] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def test_a_cid_that_is_not_a_cid_is_refused() -> None:
    with pytest.raises(ValueError, match="not a CID"):
        normalise_cid("zz0OIl")


# -- against the real js-ipfs node (tests/jsipfs.py) ---------------------------------------


@pytest.fixture
def js_store(jsipfs: JsIpfs) -> Iterator[IpfsStore]:
    store = IpfsStore.from_url(jsipfs.store_url(name="jsipfs", timeout="20"))
    store.check()
    for info in list(store.list()):
        store.delete(info.locator)
    yield store
    store.close()


def _rpc(jsipfs: JsIpfs, endpoint: str, **params: str) -> list[dict[str, Any]]:
    answer = httpx.post(f"{jsipfs.api_url}/api/v0/{endpoint}", params=params, timeout=20)
    answer.raise_for_status()
    return [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def test_js_ipfs_gives_a_small_body_its_raw_base32_cid(js_store: IpfsStore) -> None:
    body = b"pdf" * 100
    blob = js_store.put(io.BytesIO(body))
    assert blob.locators == (f"ipfs://{cid_of(body)}",)
    assert raw_cid_sha256(_cid(blob.locators[0])) == hashlib.sha256(body).hexdigest()


def test_js_ipfs_gives_a_large_body_a_base32_dag_cid(js_store: IpfsStore) -> None:
    body = bytes(range(256)) * (3 * CHUNK // 256)
    blob = js_store.put(io.BytesIO(body))
    assert _cid(blob.locators[0]).startswith("bafybei")
    assert b"".join(js_store.get(blob.locators, sha256=blob.sha256, size=blob.size)) == body


def test_js_ipfs_keeps_the_pin_name_as_metadata(jsipfs: JsIpfs, js_store: IpfsStore) -> None:
    blob = js_store.put(io.BytesIO(b"named on js-ipfs"))
    (entry,) = _rpc(jsipfs, "pin/ls", arg=_cid(blob.locators[0]), **{"cid-base": "base32"})
    parsed = parse_pin_name(entry["Keys"][_cid(blob.locators[0])]["Metadata"]["name"])
    assert parsed is not None
    assert parsed[:2] == (blob.sha256, blob.size)


def test_js_ipfs_pins_of_other_software_are_neither_listed_nor_collected(
    jsipfs: JsIpfs, js_store: IpfsStore
) -> None:
    other = b"someone else's file on js-ipfs"
    files = {"file": ("photo", other)}
    added = httpx.post(
        f"{jsipfs.api_url}/api/v0/add",
        params={"cid-version": "1", "raw-leaves": "true", "pin": "true", "cid-base": "base32"},
        files=files,
    ).json()["Hash"]
    try:
        ours = js_store.put(io.BytesIO(b"ours"))
        assert [info.sha256 for info in js_store.list()] == [ours.sha256]
        later = datetime.now(UTC) + timedelta(days=1)
        report = collect_garbage(js_store, set(), grace=timedelta(0), now=later)
        assert report.deleted == ours.locators
        with pytest.raises(BlobNotFound, match="not as an ehrgate body"):
            js_store.head(f"ipfs://{added}")
        assert (
            b"".join(js_store.get((f"ipfs://{added}",), sha256=hashlib.sha256(other).hexdigest()))
            == other
        )
    finally:
        _rpc(jsipfs, "pin/rm", arg=added)


def test_js_ipfs_answers_not_found_at_once_for_a_cid_it_does_not_hold(
    js_store: IpfsStore,
) -> None:
    missing = cid_of(b"never added to js-ipfs")
    started = time.monotonic()
    with pytest.raises(BlobNotFound):
        js_store.get((f"ipfs://{missing}",), sha256=hashlib.sha256(b"x").hexdigest())
    with pytest.raises(BlobNotFound):
        js_store.head(f"ipfs://{missing}")
    assert time.monotonic() - started < 5


def test_js_ipfs_gives_up_on_an_unknown_cid_at_the_node_timeout(jsipfs: JsIpfs) -> None:
    # Fetching from peers (offline=false) skips the pin check: the node-side timeout is
    # what ends the wait (js-ipfs would wait for ever, and httpx here for 30 s).
    store = IpfsStore.from_url(jsipfs.store_url(offline="false", node_timeout="1", timeout="30"))
    missing = cid_of(b"nowhere at all")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timed out"):
        b"".join(store.get((f"ipfs://{missing}",), sha256=hashlib.sha256(b"y").hexdigest()))
    assert time.monotonic() - started < 10
    store.close()


def test_js_ipfs_deleting_makes_the_body_unreadable(js_store: IpfsStore) -> None:
    blob = js_store.put(io.BytesIO(b"erase me from js-ipfs"))
    js_store.delete(blob.locators[0])
    with pytest.raises(BlobNotFound):
        js_store.get(blob.locators, sha256=blob.sha256)


def test_js_ipfs_still_deletes_after_an_upload_whose_source_failed(js_store: IpfsStore) -> None:
    kept = js_store.put(io.BytesIO(b"stored before the failed upload"))

    def failing() -> Iterator[bytes]:
        yield b"a" * 300_000
        raise ConnectionResetError("the uploader went away")

    with pytest.raises(ConnectionResetError):
        js_store.put(failing())
    assert [info.sha256 for info in js_store.list()] == [kept.sha256]
    started = time.monotonic()
    js_store.delete(kept.locators[0])  # js-ipfs waits for ever here after a cut-off add
    assert time.monotonic() - started < 5
    assert list(js_store.list()) == []
