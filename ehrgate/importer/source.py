"""Finding the files of an export: a `<root>/<MRN>/<category folder>/<file>.pdf` tree or a
manifest CSV (mrn, category, path, document date), each file either a Candidate to upload
or a Skip with the reason a person can act on."""

from __future__ import annotations

import csv
import datetime as dt
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ehrgate.importer.errors import ImportConfigError
from ehrgate.importer.mapping import CategoryTable

PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True)
class Candidate:
    """A file that passed every check and will be uploaded."""

    relpath: str
    path: Path
    mrn: str
    pseudonym: str
    category: str
    size: int
    document_date: str | None = None


@dataclass(frozen=True)
class Skip:
    """A file (or manifest row) that will not be uploaded, and why."""

    relpath: str
    reason: str


def scan_folder(
    root: Path,
    mrn_map: Mapping[str, str],
    categories: CategoryTable,
    *,
    ignore: frozenset[Path] = frozenset(),
) -> Iterator[Candidate | Skip]:
    """Walk *root* in a stable order; yield one Candidate or Skip per file found."""
    if not root.is_dir():
        raise ImportConfigError(f"{root}: not a directory")
    ignored = {path.resolve() for path in ignore}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames):
            path = here / name
            if path.resolve() in ignored:
                continue
            relpath = path.relative_to(root).as_posix()
            parts = relpath.split("/")
            if len(parts) != 3:
                yield Skip(relpath, "not in the <MRN>/<category folder>/<file> layout")
                continue
            mrn, folder, _ = parts
            yield _check_file(path, relpath, mrn, folder, None, mrn_map, categories)


def scan_manifest(
    manifest: Path,
    mrn_map: Mapping[str, str],
    categories: CategoryTable,
    *,
    root: Path | None = None,
) -> Iterator[Candidate | Skip]:
    """Read a manifest CSV with columns mrn, category, path and optionally document_date.

    Paths are relative to *root* (default: the manifest's folder) and must stay inside it.
    """
    base = (root or manifest.parent).resolve()
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            missing = [name for name in ("mrn", "category", "path") if name not in header]
            if missing:
                raise ImportConfigError(
                    f"{manifest}: the header row must name mrn, category, path "
                    f"(and optionally document_date); missing {', '.join(missing)}"
                )
            reader.fieldnames = header
            seen: set[str] = set()
            for row in reader:
                where = f"{manifest.name} line {reader.line_num}"
                if None in row or any(row.get(k) is None for k in ("mrn", "category", "path")):
                    yield Skip(where, "wrong number of columns")
                    continue
                raw_path = row["path"].strip()
                if not raw_path:
                    yield Skip(where, "empty path")
                    continue
                resolved = (base / raw_path).resolve()
                if not resolved.is_relative_to(base):
                    yield Skip(raw_path, f"path leaves the export folder {base}")
                    continue
                relpath = resolved.relative_to(base).as_posix()
                if relpath in seen:
                    yield Skip(relpath, f"listed again at {where}")
                    continue
                seen.add(relpath)
                date = (row.get("document_date") or "").strip() or None
                if date is not None and not _is_iso_date(date):
                    yield Skip(relpath, f"document date {date!r} is not YYYY-MM-DD")
                    continue
                yield _check_file(
                    resolved,
                    relpath,
                    row["mrn"].strip(),
                    row["category"].strip(),
                    date,
                    mrn_map,
                    categories,
                )
    except FileNotFoundError as exc:
        raise ImportConfigError(f"{manifest}: no such file") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ImportConfigError(f"{manifest}: cannot read as UTF-8 CSV ({exc})") from exc


def _check_file(
    path: Path,
    relpath: str,
    mrn: str,
    folder: str,
    document_date: str | None,
    mrn_map: Mapping[str, str],
    categories: CategoryTable,
) -> Candidate | Skip:
    pseudonym = mrn_map.get(mrn)
    if pseudonym is None:
        return Skip(relpath, f"MRN {mrn!r} is not in the MRN map")
    category = categories.category_for(folder)
    if category is None:
        return Skip(relpath, f"category folder {folder!r} is not in the category table")
    if path.is_symlink():
        return Skip(relpath, "symbolic link (not followed)")
    try:
        status = path.stat()
        # Checked before opening: opening a FIFO would wait forever for a writer.
        if not stat.S_ISREG(status.st_mode):
            return Skip(relpath, "not a regular file")
        size = status.st_size
        with path.open("rb") as handle:
            head = handle.read(len(PDF_MAGIC))
    except FileNotFoundError:
        return Skip(relpath, "file does not exist")
    except OSError as exc:
        return Skip(relpath, f"unreadable ({exc.strerror or exc})")
    if size == 0:
        return Skip(relpath, "empty file")
    if head != PDF_MAGIC:
        return Skip(relpath, "not a PDF (does not start with %PDF-)")
    return Candidate(relpath, path, mrn, pseudonym, category, size, document_date)


def _is_iso_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
