"""Checks for a package whose public names are kept once, in a table, and imported lazily.

Such a package has `_EXPORTS: dict[name, defining module]`, `__all__` made from it, a
module `__getattr__` that imports on first use, and an `if TYPE_CHECKING:` block that tells
type checkers the same names. These helpers hold the two listings equal and check that
every name resolves to what its module defines.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType


def type_checking_imports(package: ModuleType) -> dict[str, str]:
    """The names the package's `if TYPE_CHECKING:` block imports, with their modules."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                assert statement.module is not None
                for alias in statement.names:
                    assert alias.asname in (None, alias.name), "an export keeps its own name"
                    found[alias.name] = statement.module
    return found


def assert_surface_is_kept_once(package: ModuleType) -> None:
    table: dict[str, str] = package._EXPORTS
    assert type_checking_imports(package) == table
    assert list(package.__all__) == sorted(table)
    for name, module_name in table.items():
        value = getattr(package, name)
        assert value is getattr(importlib.import_module(module_name), name), name
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{package.__name__}.{name} has no docstring"


def modules_loaded_by(statement: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules under *prefixes* that a fresh interpreter has loaded after *statement*."""
    probe = (
        f"{statement}\nimport sys\n"
        f"print('\\n'.join(m for m in sys.modules if m.split('.')[0] in {prefixes!r}))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True
    )
    return done.stdout.split()
