"""The gateway's own check of stored bodies, independent of what the store checks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from gateway.errors import IntegrityFailure
from gateway.streams import VerifiedBody

BODY = [b"a" * 1000, b"b" * 1000, b"c" * 10]
SHA = hashlib.sha256(b"".join(BODY)).hexdigest()
SIZE = sum(map(len, BODY))


def _drain(body: VerifiedBody, into: list[bytes] | None = None) -> list[bytes]:
    out = [] if into is None else into
    while (chunk := body.next_chunk()) is not None:
        out.append(chunk)
    return out


def test_a_matching_body_passes_whole() -> None:
    body = VerifiedBody(iter(BODY), sha256=SHA, size=SIZE)
    assert _drain(body) == BODY
    assert body.done


@pytest.mark.parametrize(
    "chunks",
    [
        [b"a" * 1000, b"B" * 1000, b"c" * 10],  # a changed byte
        [b"a" * 1000, b"b" * 1000],  # truncated
        [*BODY, b"extra"],  # extended
        [b"b" * 1000, b"a" * 1000, b"c" * 10],  # reordered
    ],
    ids=["changed", "truncated", "extended", "reordered"],
)
def test_a_wrong_body_never_releases_its_last_chunk(chunks: list[bytes]) -> None:
    # A store that hands out whatever it holds, unchecked: the gateway still refuses it.
    body = VerifiedBody(iter(chunks), sha256=SHA, size=SIZE)
    released: list[bytes] = []
    with pytest.raises(IntegrityFailure):
        _drain(body, released)
    assert sum(map(len, released)) < SIZE


def test_an_empty_body_is_checked_too() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    assert _drain(VerifiedBody(iter([]), sha256=empty, size=0)) == []
    with pytest.raises(IntegrityFailure):
        _drain(VerifiedBody(iter([b"x"]), sha256=empty, size=0))


def test_close_reaches_the_store_stream() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield from BODY
        finally:
            closed.append(True)

    body = VerifiedBody(chunks(), sha256=SHA, size=SIZE)
    body.next_chunk()
    body.close()
    assert closed == [True]
