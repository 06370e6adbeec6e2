"""The package's public surface: kept once, every name resolves, and importing it (or
starting the command line) loads neither the HTTP stack nor the server's libraries."""

from __future__ import annotations

import inspect

import pytest

import ehrgate
from ehrgate import errors
from tests.public_surface import assert_surface_is_kept_once, modules_loaded_by

HEAVY = ("httpx", "sqlalchemy", "boto3")
# what `python -m ehrgate ARGS` loads, without leaving the interpreter at its end
HELP = (
    "import contextlib, io\nfrom ehrgate.cli import cli\n"
    "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
    "    cli({args!r}, prog_name='ehrgate')"
)


def test_the_public_surface_is_one_table() -> None:
    assert_surface_is_kept_once(ehrgate)


def test_exported_members() -> None:
    for name in ehrgate.__all__:
        member = getattr(ehrgate, name)
        assert member.__module__.startswith("ehrgate."), name
    assert set(dir(ehrgate)) >= set(ehrgate.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = ehrgate.Nothing


def test_every_exported_error_derives_from_ehrgate_error() -> None:
    for name in ehrgate.__all__:
        value = getattr(ehrgate, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, errors.EhrgateError), name


@pytest.mark.parametrize(
    "statement",
    [
        "import ehrgate",
        "import ehrgate.errors",
        "from ehrgate import UsageError",
        "from ehrgate.cli import cli",
        HELP.format(args=["--help"]),
        HELP.format(args=["keys", "identity", "--help"]),
    ],
)
def test_importing_loads_no_http_stack_and_no_server_libraries(statement: str) -> None:
    assert modules_loaded_by(statement, HEAVY) == []


def test_the_client_loads_the_http_stack_when_asked_for() -> None:
    assert "httpx" in modules_loaded_by("from ehrgate import Client", ("httpx",))
