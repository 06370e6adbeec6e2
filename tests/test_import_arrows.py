"""The import arrows between the packages: the contracts in pyproject.toml hold, and they bite.

``lint-imports`` (run by ``./dev test``) checks the contracts on the real tree. The tests
here prove that the contracts would catch a new wrong arrow: they copy the tree, plant one
throw-away module per arrow, and expect ``lint-imports`` to name each planted import. They
fail if a contract is removed or loosened. A last test checks at run time that the SDK and
CLI start without the server stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "envelope",
    "ledger",
    "storage",
    "gateway",
    "witness",
    "ehrgate",
    "migrations",
    "bridge",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

#: module to plant -> (its source, the forbidden import lint-imports must report)
PLANTED = {
    "envelope/_probe_storage.py": ("import storage\n", "envelope._probe_storage -> storage"),
    "storage/_probe_ledger.py": (
        "import ledger.wire.blocks\n",
        "storage._probe_ledger -> ledger.wire.blocks",
    ),
    "storage/_probe_ehrgate.py": (
        "import ehrgate.trust\n",
        "storage._probe_ehrgate -> ehrgate.trust",
    ),
    "envelope/_probe_gateway.py": ("import gateway\n", "envelope._probe_gateway -> gateway"),
    "ledger/_probe_storage.py": (
        "import storage.types\n",
        "ledger._probe_storage -> storage.types",
    ),
    "ledger/_probe_gateway.py": ("import gateway\n", "ledger._probe_gateway -> gateway"),
    "gateway/_probe_sdk.py": ("import ehrgate.client\n", "gateway._probe_sdk -> ehrgate.client"),
    "ehrgate/_probe_gateway.py": ("import gateway\n", "ehrgate._probe_gateway -> gateway"),
    "ehrgate/commands/_probe_storage.py": (
        "import storage\n",
        "ehrgate.commands._probe_storage -> storage",
    ),
    "ehrgate/_probe_sqlalchemy.py": (
        "import sqlalchemy\n",
        "ehrgate._probe_sqlalchemy -> sqlalchemy",
    ),
    "bridge/_probe_gateway.py": ("import gateway.app\n", "bridge._probe_gateway -> gateway.app"),
    "bridge/_probe_storage.py": ("import storage\n", "bridge._probe_storage -> storage"),
    "bridge/_probe_ledger_db.py": (
        "from ledger import database\n",
        "bridge._probe_ledger_db -> ledger.database",
    ),
    "witness/_probe_gateway.py": (
        "import gateway.settings\n",
        "witness._probe_gateway -> gateway.settings",
    ),
    "witness/_probe_ledger_db.py": (
        "from ledger import ledger\n",
        "witness._probe_ledger_db -> ledger.ledger",
    ),
    "witness/_probe_merkle.py": (
        "import ledger.merkle\n",
        "witness._probe_merkle -> ledger.merkle",
    ),
    "witness/_probe_storage.py": ("import storage\n", "witness._probe_storage -> storage"),
    "witness/_probe_sqlalchemy.py": (
        "import sqlalchemy\n",
        "witness._probe_sqlalchemy -> sqlalchemy",
    ),
    "gateway/_probe_witness.py": ("import witness\n", "gateway._probe_witness -> witness"),
    "ehrgate/_probe_ledger_db.py": (
        "from ledger import database\n",
        "ehrgate._probe_ledger_db -> ledger.database",
    ),
}


def _copy_tree(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # lint-imports puts its working directory first on sys.path, so it reads the copy.
    env = {**os.environ, "PYTHONPATH": str(tree), "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    tree = tmp_path_factory.mktemp("tree")
    _copy_tree(tree)
    for relative, (source, _) in PLANTED.items():
        (tree / relative).write_text(source)
    return _lint_imports(tree)


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_forbidden_import_breaks_a_contract(
    planted_report: subprocess.CompletedProcess[str], planted: str
) -> None:
    _, reported = PLANTED[planted]
    assert planted_report.returncode != 0, planted_report.stdout
    # The report names each broken import as "module -> imported (l.N)".
    assert f"{reported} (l.1)" in planted_report.stdout, planted_report.stdout


def test_the_server_side_commands_may_start_the_gateway(
    planted_report: subprocess.CompletedProcess[str],
) -> None:
    # commands.serve and embedded import the gateway on the real tree; exempt by design.
    assert "ehrgate.commands.serve -> gateway" not in planted_report.stdout
    assert "ehrgate.embedded -> gateway" not in planted_report.stdout


def test_the_contracts_are_the_ones_in_pyproject(
    planted_report: subprocess.CompletedProcess[str],
) -> None:
    # A copy without contracts would report "0 kept, 0 broken" and pass everything above
    # only by accident; make sure the arrows were all read.
    assert "ehrgate does not import the database stack" in planted_report.stdout
    assert "envelope and storage are independent of each other" in planted_report.stdout


def test_the_sdk_and_cli_start_without_the_server_stack() -> None:
    """``ehrgate keys ...`` on a laptop must not load SQLAlchemy or boto3."""
    probe = textwrap.dedent(
        """
        import sys
        import ehrgate, ehrgate.cli, envelope
        heavy = ("sqlalchemy", "alembic", "boto3", "botocore", "storage", "gateway")
        print(" ".join(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == ""
