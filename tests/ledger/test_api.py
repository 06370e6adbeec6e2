"""The package's public surface: every exported name exists and says what it is."""

from __future__ import annotations

import inspect

import ledger


def test_all_names_are_exported_and_documented() -> None:
    assert sorted(ledger.__all__) == sorted(set(ledger.__all__))
    for name in ledger.__all__:
        value = getattr(ledger, name)
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value):
            assert inspect.getdoc(value), f"ledger.{name} has no docstring"


def test_every_error_derives_from_ledger_error() -> None:
    from ledger import errors

    for name, value in vars(errors).items():
        if inspect.isclass(value) and issubclass(value, Exception) and name != "LedgerError":
            assert issubclass(value, errors.LedgerError), name
