"""The ledger's typed query results carry the members the wire shapes name, so that the
gateway can answer with them and the SDK read them back (tests/client/test_wire_contract.py
ties the other end)."""

from __future__ import annotations

import dataclasses

from ledger.results import Permission, Record
from ledger.wire import shapes


def _members(result: type) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(result))


def test_a_record_result_has_the_record_shape_and_its_rekey_time_and_generation() -> None:
    assert set(_members(Record)) == {*shapes.RECORD.names, "rekeyed_at", "key_generation"}


def test_a_permission_result_has_every_member_of_a_grant() -> None:
    assert set(shapes.GRANT_TX.names) <= set(_members(Permission))
