"""The two tables an import needs: MRN → pseudonym, and export folder name → category."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ehrgate.importer.errors import ImportConfigError

# Folder names as oncology information systems commonly export them, matched after
# case-folding and whitespace collapsing.
DEFAULT_CATEGORY_FOLDERS: Mapping[str, str] = {
    "history and physical": "history-physical",
    "history & physical": "history-physical",
    "h&p": "history-physical",
    "laboratory results": "lab-results",
    "lab results": "lab-results",
    "labs": "lab-results",
    "radiation dose": "radiation-dose",
    "dose report": "radiation-dose",
    "treatment summary": "treatment-summary",
}

_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()


@dataclass(frozen=True)
class CategoryTable:
    """Maps an export's category folder names (or manifest values) to ledger categories."""

    folders: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_FOLDERS))

    def category_for(self, folder: str) -> str | None:
        """The category for *folder*, or None when the name is not in the table.

        A value that already is a category id (e.g. ``lab-results``) maps to itself.
        """
        folded = _fold(folder)
        if folded in self.folders:
            return self.folders[folded]
        if folded in set(self.folders.values()):
            return folded
        return None

    @classmethod
    def from_csv(cls, path: Path, *, extend_defaults: bool = True) -> CategoryTable:
        """Read a two-column CSV `folder,category` (header row required)."""
        table: dict[str, str] = dict(DEFAULT_CATEGORY_FOLDERS) if extend_defaults else {}
        for line, row in _read_csv(path, ("folder", "category")):
            folder, category = row["folder"].strip(), row["category"].strip()
            if not folder or not category:
                raise ImportConfigError(f"{path}:{line}: folder and category must not be empty")
            table[_fold(folder)] = category
        return cls(table)


def load_mrn_map(path: Path) -> dict[str, str]:
    """Read the hospital's `mrn,pseudonym` CSV; every pseudonym is 64 lowercase hex digits."""
    mapping: dict[str, str] = {}
    for line, row in _read_csv(path, ("mrn", "pseudonym")):
        mrn, pseudonym = row["mrn"].strip(), row["pseudonym"].strip().lower()
        if not mrn:
            raise ImportConfigError(f"{path}:{line}: empty MRN")
        if not _PSEUDONYM.fullmatch(pseudonym):
            raise ImportConfigError(
                f"{path}:{line}: pseudonym for MRN {mrn!r} must be 64 hexadecimal digits"
            )
        if mrn in mapping and mapping[mrn] != pseudonym:
            raise ImportConfigError(f"{path}:{line}: MRN {mrn!r} is mapped twice")
        mapping[mrn] = pseudonym
    return mapping


def _read_csv(path: Path, required: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in header]
            if missing:
                raise ImportConfigError(
                    f"{path}: the header row must name the columns {', '.join(required)}; "
                    f"missing {', '.join(missing)}"
                )
            reader.fieldnames = header
            rows = []
            for row in reader:
                if None in row or any(row.get(name) is None for name in required):
                    raise ImportConfigError(f"{path}:{reader.line_num}: wrong number of columns")
                rows.append((reader.line_num, row))
            return rows
    except FileNotFoundError as exc:
        raise ImportConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ImportConfigError(f"{path}: cannot read as UTF-8 CSV ({exc})") from exc
