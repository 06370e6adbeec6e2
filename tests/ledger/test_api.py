"""The package's public surface: kept once, every name resolves, and the protocol layer
loads no database code."""

from __future__ import annotations

import inspect

import pytest

import ledger
from tests.public_surface import assert_surface_is_kept_once, modules_loaded_by


def test_the_public_surface_is_one_table() -> None:
    assert_surface_is_kept_once(ledger)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = ledger.Nothing


@pytest.mark.parametrize(
    "statement",
    ["import ledger", "import ledger.wire", "import ledger.errors", "from ledger import Block"],
)
def test_the_protocol_layer_loads_no_database_code(statement: str) -> None:
    assert modules_loaded_by(statement, ("sqlalchemy", "alembic")) == []


def test_the_database_layer_is_loaded_when_asked_for() -> None:
    assert "sqlalchemy" in modules_loaded_by("from ledger import Ledger", ("sqlalchemy",))


def test_every_error_derives_from_ledger_error() -> None:
    from ledger import errors

    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, Exception) and name != "LedgerError":
            assert issubclass(value, errors.LedgerError), name
