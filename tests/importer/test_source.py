"""Scanning an export tree or manifest: every file is a candidate or a skip with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrgate.importer import Candidate, CategoryTable, Skip, load_mrn_map, scan_folder
from ehrgate.importer.errors import ImportConfigError
from ehrgate.importer.source import scan_manifest
from tests.importer.conftest import PDF, PSEUDONYM_A, write


def _by_path(items: list[Candidate | Skip]) -> dict[str, Candidate | Skip]:
    return {item.relpath: item for item in items}


def test_folder_scan_maps_mrn_and_category(export: Path, mrn_map: dict[str, str]) -> None:
    items = _by_path(list(scan_folder(export, mrn_map, CategoryTable())))
    cbc = items["MRN001/Laboratory Results/cbc.pdf"]
    assert isinstance(cbc, Candidate)
    assert (cbc.pseudonym, cbc.category, cbc.mrn) == (PSEUDONYM_A, "lab-results", "MRN001")
    hp = items["MRN001/History and Physical/hp.pdf"]
    assert isinstance(hp, Candidate)
    assert hp.category == "history-physical"


@pytest.mark.parametrize(
    ("relpath", "reason"),
    [
        ("MRN999/Laboratory Results/stranger.pdf", "MRN 'MRN999' is not in the MRN map"),
        ("MRN001/Billing/invoice.pdf", "category folder 'Billing' is not in the category table"),
        ("MRN001/Laboratory Results/notes.txt", "not a PDF"),
        ("MRN002/Laboratory Results/empty.pdf", "empty file"),
        ("loose.pdf", "layout"),
    ],
)
def test_folder_scan_skips_with_reason(
    export: Path, mrn_map: dict[str, str], relpath: str, reason: str
) -> None:
    item = _by_path(list(scan_folder(export, mrn_map, CategoryTable())))[relpath]
    assert isinstance(item, Skip)
    assert reason in item.reason


def test_unreadable_file_is_skipped(export: Path, mrn_map: dict[str, str]) -> None:
    locked = write(export / "MRN001" / "Laboratory Results" / "locked.pdf")
    locked.chmod(0)
    try:
        readable = locked.open("rb")
    except PermissionError:
        pass
    else:  # running as root: permissions do not stop reads, so use a dangling symlink
        readable.close()
        locked.chmod(0o600)
        locked.unlink()
        locked.symlink_to(export / "gone.pdf")
    item = _by_path(list(scan_folder(export, mrn_map, CategoryTable())))[
        "MRN001/Laboratory Results/locked.pdf"
    ]
    assert isinstance(item, Skip)
    assert item.reason.startswith(("unreadable", "symbolic link"))


def test_custom_category_table_extends_defaults(tmp_path: Path) -> None:
    table_csv = tmp_path / "categories.csv"
    table_csv.write_text("folder,category\nBilling,lab-results\n")
    table = CategoryTable.from_csv(table_csv)
    assert table.category_for("  BILLING ") == "lab-results"
    assert table.category_for("Laboratory Results") == "lab-results"
    assert table.category_for("radiation-dose") == "radiation-dose"
    assert table.category_for("Unknown") is None


def test_manifest_rows_resolve_inside_export(tmp_path: Path, mrn_map: dict[str, str]) -> None:
    write(tmp_path / "docs" / "a.pdf", PDF + b"a")
    write(tmp_path / "docs" / "b.pdf", PDF + b"b")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "mrn,category,path,document_date\n"
        "MRN001,Laboratory Results,docs/a.pdf,2024-03-01\n"
        "MRN001,lab-results,docs/b.pdf,01/03/2024\n"
        "MRN001,lab-results,../outside.pdf,\n"
        "MRN001,lab-results,docs/a.pdf,\n"
        "MRN001,lab-results\n"
    )
    items = list(scan_manifest(manifest, mrn_map, CategoryTable()))
    assert isinstance(items[0], Candidate)
    assert items[0].document_date == "2024-03-01"
    reasons = [item.reason for item in items[1:] if isinstance(item, Skip)]
    assert len(reasons) == 4
    assert "not YYYY-MM-DD" in reasons[0]
    assert "leaves the export folder" in reasons[1]
    assert "listed again" in reasons[2]
    assert "wrong number of columns" in reasons[3]


def test_manifest_without_required_columns_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("mrn,path\nMRN001,a.pdf\n")
    with pytest.raises(ImportConfigError, match="missing category"):
        list(scan_manifest(manifest, {}, CategoryTable()))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("mrn,pseudonym\nMRN1,xyz\n", "64 hexadecimal digits"),
        ("mrn\nMRN1\n", "missing pseudonym"),
        (f"mrn,pseudonym\nMRN1,{'a' * 64}\nMRN1,{'b' * 64}\n", "mapped twice"),
        (f"mrn,pseudonym\n,{'a' * 64}\n", "empty MRN"),
    ],
)
def test_bad_mrn_map_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "map.csv"
    path.write_text(content)
    with pytest.raises(ImportConfigError, match=message):
        load_mrn_map(path)


def test_missing_mrn_map_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImportConfigError, match="no such file"):
        load_mrn_map(tmp_path / "absent.csv")


def test_mrn_map_reads_upper_case_pseudonyms(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(f"MRN,Pseudonym\nMRN1,{'AB' * 32}\n")
    assert load_mrn_map(path) == {"MRN1": "ab" * 32}
