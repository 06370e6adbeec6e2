"""The ITI-105 body split as it arrives: the skeleton parses as the body would, the data
comes out whole whatever the chunking, and strict base64 in pieces is strict base64."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest

from bridge.base64data import strict_b64decode
from bridge.errors import InvalidDocument
from bridge.fhir.scan import PLACEHOLDER, AttachmentScanner
from bridge.fhir.streamed import Base64Stream
from tests.bridge.samples import document_reference, pdf


def _scan(body: bytes, sizes: list[int]) -> tuple[Any, bytes, Any]:
    """(the skeleton parsed, the data's text, what preceded the data, closed)."""
    data: list[bytes] = []
    before: list[Any] = []
    scanner = AttachmentScanner(lambda: before.append(scanner.partial()), data.append)
    position = 0
    for size in sizes:
        scanner.feed(body[position : position + size])
        position += size
    scanner.feed(body[position:])
    scanner.end()
    return json.loads(scanner.skeleton), b"".join(data), before[0] if before else None


def _chunkings(length: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    found = [[1] * min(length, 400), [length], [7, 3, 1, 64]]
    found += [[rng.randint(1, 97) for _ in range(length // 40)] for _ in range(5)]
    return found


def _orders(content: bytes) -> list[dict[str, Any]]:
    doc = document_reference(content)
    data_first = {"content": doc["content"]} | {k: v for k, v in doc.items() if k != "content"}
    attachment = doc["content"][0]["attachment"]
    hash_first = dict(doc, content=[{"attachment": dict(reversed(list(attachment.items())))}])
    return [doc, data_first, hash_first]


@pytest.mark.parametrize("order", range(3))
def test_skeleton_and_data_whatever_the_chunking(order: int) -> None:
    content = pdf(2000)
    doc = _orders(content)[order]
    for indent in (None, 2):
        body = json.dumps(doc, indent=indent).encode()
        for sizes in _chunkings(len(body), seed=order):
            parsed, data, before = _scan(body, sizes)
            expected = json.loads(body)
            expected["content"][0]["attachment"]["data"] = PLACEHOLDER
            assert parsed == expected
            assert base64.b64decode(data) == content
            assert before is not None


def test_what_precedes_the_data_is_what_came_before_it() -> None:
    doc = _orders(pdf(100))[1]  # content (and its data) first
    body = json.dumps(doc).encode()
    _, _, before = _scan(body, [5])
    attachment = before["content"][0]["attachment"]
    assert attachment == {"contentType": "application/pdf", "title": "lab-results.pdf", "data": ""}
    assert "subject" not in before
    assert "masterIdentifier" not in before


def test_escapes_in_the_data_are_decoded_even_split_across_pieces() -> None:
    text = base64.b64encode(b"%PDF-" + bytes(range(256)) * 3).decode()
    assert "/" in text
    escaped = text.replace("/", "\\/").replace("A", "\\u0041", 3)
    body = ('{"content": [{"attachment": {"data": "' + escaped + '"}}]}').encode()
    for sizes in _chunkings(len(body), seed=9):
        _, data, _ = _scan(body, sizes)
        assert data.decode() == text


def test_keys_with_escapes_and_strings_that_look_like_structure() -> None:
    body = (
        b'{"note": "a \\"content\\": [{ } ] , :", "cont\\u0065nt": [{"attachment": '
        b'{"x": ["data", {"data": "no"}], "d\\u0061ta": "QUJD"}}]}'
    )
    for sizes in _chunkings(len(body), seed=3):
        parsed, data, _ = _scan(body, sizes)
        assert data == b"QUJD"
        assert parsed["content"][0]["attachment"]["data"] == PLACEHOLDER
        assert parsed["content"][0]["attachment"]["x"] == ["data", {"data": "no"}]


def test_data_elsewhere_is_not_taken() -> None:
    body = b'{"contained": {"content": [{"attachment": {"data": "QUJD"}}]}, "content": [{}, ' + (
        b'{"attachment": {"data": "QUJD"}}]}'
    )
    parsed, data, before = _scan(body, [len(body)])
    assert data == b""
    assert before is None
    assert parsed == json.loads(body)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"content": [{"attachment": {"data": "QUJD", "data": "QUJD"}}]}', "more than once"),
        (b'{"content": [{"attachment": {"data": "QUJD', "ends inside"),
        (b'{"a": 1}}', "closes nothing"),
        (b'{"content": [{"attachment": {"data": "QU\\qJD"}}]}', "bad escape"),
    ],
)
def test_what_the_scanner_refuses(body: bytes, words: str) -> None:
    with pytest.raises(InvalidDocument, match=words):
        _scan(body, [3])


def _strict(text: bytes) -> bytes | None:
    try:
        return strict_b64decode(text)
    except ValueError:
        return None


def _pieces(text: bytes, sizes: list[int]) -> bytes | None:
    stream = Base64Stream()
    out = []
    position = 0
    try:
        for size in [*sizes, len(text)]:
            out.extend(stream.feed(text[position : position + size]))
            position += size
        out.append(stream.end())
    except InvalidDocument:
        return None
    return b"".join(out)


def test_base64_in_pieces_accepts_exactly_what_strict_base64_accepts() -> None:
    rng = random.Random(5)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    texts = [base64.b64encode(rng.randbytes(n)) for n in range(12)]
    for _ in range(3000):
        length = rng.randint(0, 14)
        text = bytes(rng.choice(alphabet + b"==== \n%") for _ in range(length))
        texts.append(text)
        good = base64.b64encode(rng.randbytes(rng.randint(1, 9)))
        texts.append(good + good)  # padding in the middle when the first is padded
    for text in texts:
        if not text:
            continue
        sizes = [rng.randint(0, 5) for _ in range(rng.randint(0, 4))]
        assert _pieces(text, sizes) == _strict(text), text


def test_long_pieces_decoded_in_place_accept_exactly_what_strict_base64_accepts() -> None:
    """Pieces long enough to be decoded in place, the held characters apart: a padding
    or a bad character anywhere, on either side of a piece's edge, is still refused."""
    rng = random.Random(7)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for _ in range(4000):
        text = bytearray(base64.b64encode(rng.randbytes(rng.randint(1, 60))))
        for _ in range(rng.choice([0, 0, 1, 2])):
            text[rng.randrange(len(text))] = rng.choice(alphabet + b"== \n%")
        sizes = [rng.randint(0, 30) for _ in range(rng.randint(0, 6))]
        assert _pieces(bytes(text), sizes) == _strict(bytes(text)), (bytes(text), sizes)
