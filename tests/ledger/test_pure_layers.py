"""The rules, the state model and offline verification load no SQLAlchemy.

They are pure: a verifier of an export, or anything else that replays a log, needs no
database library. Each check runs in a fresh interpreter, so that what this test process
has already imported does not count.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ledger

PURE = (
    "ledger.rules",
    "ledger.state",
    "ledger.state_tables",
    "ledger.verify",
    "ledger.report",
    "ledger.capsule_check",
)

_REPORT = """
import sys
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")
assert not loaded, "sqlalchemy modules loaded: " + ", ".join(loaded[:5])
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_pure_modules_import_no_sqlalchemy_themselves() -> None:
    # The package's own __init__ is bypassed: only what these modules import counts.
    package = Path(ledger.__file__).parent
    code = (
        "import sys, types\n"
        "package = types.ModuleType('ledger')\n"
        f"package.__path__ = [{str(package)!r}]\n"
        "sys.modules['ledger'] = package\n"
        f"import {', '.join(PURE)}\n" + _REPORT
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr


def test_importing_the_pure_modules_loads_no_sqlalchemy() -> None:
    result = _run(f"import {', '.join(PURE)}\n" + _REPORT)
    if result.returncode != 0 and _run("import ledger\n" + _REPORT).returncode != 0:
        pytest.skip("ledger/__init__.py imports the database modules eagerly")
    assert result.returncode == 0, result.stderr
