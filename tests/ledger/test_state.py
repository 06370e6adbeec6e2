"""Pure state pieces: the fast canonical encoder and the permission index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, strategies as st

from envelope import EnvelopeError, canonical_json
from ledger.categories import CategoryRegistry
from ledger.state import PermissionIndex
from ledger.wire.clock import format_time, parse_time, to_micros
from ledger.wire.encoding import canonical

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_json)
def test_fast_canonical_json_equals_rfc8785(value: Any) -> None:
    assert canonical(value) == canonical_json(value)


def test_values_outside_the_fast_path_use_the_reference() -> None:
    assert canonical({"a": 1.5}) == canonical_json({"a": 1.5})
    assert canonical({"é": 1, "\U0001f600": 2}) == canonical_json({"é": 1, "\U0001f600": 2})
    with pytest.raises(EnvelopeError, match="safe integer"):
        canonical({"size": 2**53})


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2999, 1, 1)))
def test_time_round_trips_and_orders_as_text(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    text = format_time(aware)
    assert parse_time(text) == aware
    later = format_time(aware + timedelta(microseconds=1))
    assert text < later
    assert to_micros(later) - to_micros(text) == 1


def test_index_counts_grants_and_forgets_revoked_ones() -> None:
    index = PermissionIndex(CategoryRegistry())
    row = {
        "permission_id": "p1",
        "pseudonym": "a" * 64,
        "grantee": "dr",
        "rights": "read",
        "categories": "lab-results",
        "not_before": "2026-01-01T00:00:00.000000Z",
        "not_after": "2027-01-01T00:00:00.000000Z",
    }
    index.add(row)
    index.add({**row, "permission_id": "p2", "categories": "all", "rights": "write"})
    assert len(index) == 2
    assert index.check("dr", "read", "a" * 64, "lab-results", "2026-06-01T00:00:00.000000Z")
    assert index.check("dr", "write", "a" * 64, "radiation-dose", "2026-06-01T00:00:00.000000Z")
    index.remove("a" * 64, "dr", "p1")
    assert len(index) == 1
    assert not index.check("dr", "read", "a" * 64, "lab-results", "2026-06-01T00:00:00.000000Z")


@given(
    st.dictionaries(st.text(max_size=12), _json, max_size=5),
    st.text(min_size=1, max_size=30),
    st.binary(min_size=64, max_size=64),
)
def test_signed_bytes_are_the_canonical_payload(
    body: dict[str, Any], signer: str, signature: bytes
) -> None:
    from ledger import Transaction

    tx = Transaction("grant", {**body, "tx_id": "0" * 32}, signer, signature)
    assert tx.signed_bytes() == canonical(tx.signed_payload())


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T10:00:00.000000Z",  # no such day
        "2026-03-01T24:00:00.000000Z",
        "2026-03-01T10:60:00.000000Z",
        "2026-03-01T10:00:60.000000Z",
        "2026-03-01T10:00:00.000000+00:00",
        "2026-03-01 10:00:00.000000Z",
        "2026-03-01T10:00:00Z",
    ],
)
def test_check_time_refuses_what_parse_time_refuses_even_on_a_known_date(text: str) -> None:
    from ledger.errors import MalformedTransaction
    from ledger.wire.clock import check_time

    # A valid time on the same date (or the day before) is remembered first.
    assert check_time("2026-03-01T09:00:00.000000Z") == "2026-03-01T09:00:00.000000Z"
    assert check_time("2026-02-28T09:00:00.000000Z") == "2026-02-28T09:00:00.000000Z"
    with pytest.raises(MalformedTransaction):
        parse_time(text)
    with pytest.raises(MalformedTransaction):
        check_time(text, "body.at")


def test_check_time_accepts_every_valid_time_of_a_remembered_date() -> None:
    from ledger.wire.clock import check_time

    for text in ("2028-02-29T00:00:00.000000Z", "2028-02-29T23:59:59.999999Z"):
        assert check_time(text) == text == format_time(parse_time(text))
