"""The ledger's fast canonical JSON (orjson) against the RFC 8785 reference, for every input.

`canonical` must equal `envelope.canonical_json` (rfc8785) whenever the reference accepts the
value, and `parse_canonical` may accept bytes only if they are exactly the reference
encoding of what they hold.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from envelope import EnvelopeError, SigningKey, canonical_json
from ledger.errors import MalformedTransaction
from ledger.wire import builders as b
from ledger.wire.encoding import canonical, parse_canonical
from ledger.wire.transactions import Transaction

# Every code point but lone surrogates, plus the characters whose escapes differ between
# encoders: controls, quote, backslash, slash, DEL, the line separators, astral ones.
_chars = st.characters(codec="utf-8")
_special = st.sampled_from(
    [
        *("\x00", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", '"', "\\", "/", "\x7f"),
        *("\u2028", "\u2029", "\ufeff", "\ue000", "\uffff", "\U0001f600", "é", "<", ">", "&"),
    ]
)
_text = st.lists(st.one_of(_chars, _special), max_size=12).map("".join)
_ints = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 0, -1]),
)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_text, inner, max_size=4),
    ),
    max_leaves=16,
)
# The shapes transactions have: ASCII keys, strings, safe integers, booleans, null.
_ascii_keys = st.text(st.characters(min_codepoint=0, max_codepoint=127), max_size=8)
_tx_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), _text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_ascii_keys, inner, max_size=5)
    ),
    max_leaves=20,
)


def _reference(value: Any) -> bytes | None:
    try:
        return canonical_json(value)
    except EnvelopeError:
        return None


@settings(max_examples=600, deadline=None)
@given(_values)
def test_canonical_equals_the_reference_for_every_value(value: Any) -> None:
    expected = _reference(value)
    if expected is None:
        with pytest.raises(EnvelopeError):
            canonical(value)
    else:
        assert canonical(value) == expected


@settings(max_examples=600, deadline=None)
@given(_tx_like)
def test_reference_bytes_of_transaction_shapes_take_the_fast_path(value: Any) -> None:
    encoded = canonical_json(value)
    assert parse_canonical(encoded) == value


@settings(max_examples=600, deadline=None)
@given(_values)
def test_parse_canonical_accepts_only_the_reference_encoding(value: Any) -> None:
    expected = _reference(value)
    if expected is not None:
        parsed = parse_canonical(expected)
        assert parsed is None or canonical_json(parsed) == expected
    # Other encodings of the same value: accepted only where they are the canonical one.
    for options in (
        {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": False},
        {"sort_keys": True, "separators": (",", ":"), "ensure_ascii": True},
        {"sort_keys": False, "separators": (", ", ": ")},
    ):
        try:
            other = json.dumps(value, **options).encode("utf-8")  # type: ignore[arg-type]
        except UnicodeEncodeError:
            continue
        parsed = parse_canonical(other)
        if parsed is not None:
            assert other == canonical_json(json.loads(other))


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=64) | _text.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_parse_canonical_never_accepts_what_the_reference_would_not_produce(data: bytes) -> None:
    parsed = parse_canonical(data)
    if parsed is not None:
        assert canonical_json(json.loads(data)) == data


@pytest.mark.parametrize(
    "text",
    [
        b"1.0",  # orjson keeps the point; RFC 8785 writes 1
        b"1e21",
        b"9007199254740992",  # beyond 2**53 - 1
        b'{"\xc3\xa9":1}',  # a non-ASCII key: the reference orders by UTF-16
        b'"\\ud800"',  # a lone surrogate
        b'{"a":1,"a":1}',  # a repeated member
        b"-0",
        b'"\\u00E9"',
    ],
)
def test_parse_canonical_leaves_the_edge_cases_to_the_reference(text: bytes) -> None:
    assert parse_canonical(text) is None


@pytest.mark.parametrize("value", ["\ud800", {"a": ["\udfff"]}, 1.5, {"\u00e9": 1}, 2**60])
def test_values_outside_the_fast_path_go_to_the_reference(value: Any) -> None:
    expected = _reference(value)
    if expected is None:
        with pytest.raises(EnvelopeError):
            canonical(value)
    else:
        assert canonical(value) == expected


def test_a_transaction_from_canonical_bytes_is_the_same_as_from_json() -> None:
    signer = b.LedgerSigner(SigningKey.generate())
    tx = b.access(
        signer, actor="ledger", action="body", pseudonym="ab" * 32, decision="allowed",
        reason="controls \x01 and ünïcode \U0001f600", record_id="0" * 32,
    )  # fmt: skip
    fast = Transaction.from_bytes(tx.encoded)
    slow = Transaction.from_json(json.loads(tx.encoded))
    for parsed in (fast, slow):
        assert parsed.encoded == tx.encoded
        assert parsed.leaf_hash == tx.leaf_hash
        assert parsed.body == tx.body
        assert parsed.signature == tx.signature
        assert parsed.signed_bytes() == tx.signed_bytes()
        assert not parsed.is_verified_with(signer.public_key)  # parsed: checked on append


def test_non_canonical_transaction_bytes_are_still_refused() -> None:
    signer = b.LedgerSigner(SigningKey.generate())
    tx = b.access(
        signer, actor="ledger", action="body", pseudonym="ab" * 32, decision="allowed",
        reason="r",
    )  # fmt: skip
    spaced = json.dumps(json.loads(tx.encoded), sort_keys=True).encode()
    with pytest.raises(MalformedTransaction, match="canonical"):
        Transaction.from_bytes(spaced)
    with pytest.raises(MalformedTransaction, match="not JSON"):
        Transaction.from_bytes(tx.encoded[:-1])
