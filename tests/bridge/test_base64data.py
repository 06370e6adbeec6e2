"""The bridge's base64 is RFC 4648 strict: what Python's validating decoder accepts in
whole quanta."""

from __future__ import annotations

import base64
import binascii
import random

import pytest

from bridge.base64data import b64encode_text, strict_b64decode


def _stdlib(text: bytes) -> bytes | None:
    """Python's validating decoder, which also lets a padding character follow a whole
    last quantum: RFC 4648 has the text in quanta of four."""
    if len(text) % 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _ours(text: bytes) -> bytes | None:
    try:
        return strict_b64decode(text)
    except ValueError:
        return None


def test_it_accepts_exactly_what_the_validating_stdlib_decoder_accepts() -> None:
    rng = random.Random(11)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    texts = [base64.b64encode(rng.randbytes(n)) for n in range(200)]
    for _ in range(5000):
        texts.append(
            bytes(rng.choice(alphabet + b"==== \n\r%-_.\x00") for _ in range(rng.randint(0, 14)))
        )
    for text in texts:
        assert _ours(text) == _stdlib(text), text


@pytest.mark.parametrize(
    "text",
    ["QUJD\n", "QUJD ", "QU JD", "QUJD====", "QUI=QUJD", "QUJ", "QQ=", "QUJ-", "QUJ_", "QUJDé"],
)
def test_what_it_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        strict_b64decode(text)


def test_a_megabyte_round_trips() -> None:
    data = random.Random(3).randbytes(1 << 20)
    text = b64encode_text(data)
    assert text == base64.b64encode(data).decode("ascii")
    assert strict_b64decode(text) == data
