"""Stored bodies on the way out: checked once, by the store, before their last chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import IntegrityFailure
from gateway.streams import VerifiedBody
from storage.errors import IntegrityError
from storage.local import LocalStore

BODY = [b"a" * 1000, b"b" * 1000, b"c" * 10]
SHA = hashlib.sha256(b"".join(BODY)).hexdigest()
SIZE = sum(map(len, BODY))


def _drain(body: VerifiedBody, into: list[bytes] | None = None) -> list[bytes]:
    out = [] if into is None else into
    while (chunk := body.next_chunk()) is not None:
        out.append(chunk)
    return out


def test_a_matching_body_passes_whole() -> None:
    body = VerifiedBody(iter(BODY), size=SIZE)
    assert _drain(body) == BODY
    assert body.done


def test_a_body_of_one_chunk_is_done_with_its_first_chunk() -> None:
    body = VerifiedBody(iter([b"x" * 10]), size=10)
    assert body.next_chunk() == b"x" * 10
    assert body.done


@pytest.mark.parametrize(
    "chunks",
    [[b"a" * 1000, b"b" * 1000], [*BODY, b"extra"]],
    ids=["truncated", "extended"],
)
def test_a_body_of_the_wrong_size_never_releases_its_last_chunk(chunks: list[bytes]) -> None:
    body = VerifiedBody(iter(chunks), size=SIZE)
    released: list[bytes] = []
    with pytest.raises(IntegrityFailure):
        _drain(body, released)
    assert sum(map(len, released)) < SIZE


def test_an_empty_body_is_checked_too() -> None:
    assert _drain(VerifiedBody(iter([]), size=0)) == []
    with pytest.raises(IntegrityFailure):
        _drain(VerifiedBody(iter([b"x"]), size=0))


@pytest.mark.parametrize("flip", [0, 1500, SIZE - 1], ids=["first", "middle", "last"])
def test_a_changed_byte_in_the_store_stops_the_body_before_its_last_chunk(
    tmp_path: Path, flip: int
) -> None:
    # The store's own check is the only hash on the way out: through the gateway's wrapper
    # it still stops a changed body before the whole of it is released.
    store = LocalStore(tmp_path / "blobs", fsync=False)
    blob = store.put(iter(BODY))
    (path,) = (p for p in (tmp_path / "blobs").rglob(SHA) if p.is_file())
    data = bytearray(path.read_bytes())
    data[flip] ^= 0x01
    path.write_bytes(bytes(data))
    body = VerifiedBody(store.get(blob.locators, sha256=SHA, size=SIZE), size=SIZE)
    released: list[bytes] = []
    with pytest.raises(IntegrityError):
        _drain(body, released)
    assert sum(map(len, released)) < SIZE
    body.close()


def test_close_reaches_the_store_stream() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield from BODY
        finally:
            closed.append(True)

    body = VerifiedBody(chunks(), size=SIZE)
    body.next_chunk()
    body.close()
    assert closed == [True]
