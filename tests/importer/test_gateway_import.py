"""`ehrgate import-aria` against a live gateway: large exports import, re-runs upload
nothing, a run killed half-way resumes without duplicates, every skip is reported."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ehrgate.embedded import free_port
from ehrgate.importer import CategoryTable, scan_folder
from ehrgate.pdf import text_pdf
from tests.client.live import Cast, live_cast, new_patient

FOLDERS = ("Laboratory Results", "Radiation Dose", "History and Physical")


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    with live_cast(tmp_path_factory.mktemp("gateway")) as found:
        yield found


def fresh_patient(cast: Cast, *, writable: bool = True) -> str:
    """A newly registered patient (who lets the system write, unless told not to)."""
    patient = new_patient(os.urandom(6).hex())
    with cast.client(patient) as client:
        client.register_patient()
        if writable:
            client.grant(
                cast.system.id,
                rights=["write"],
                categories="all",
                not_after=datetime.now(UTC) + timedelta(days=1),
            )
    cast.__dict__.setdefault("patients", {})[patient.pseudonym] = patient
    return patient.pseudonym


def ledger_record_ids(cast: Cast, pseudonym: str) -> list[str]:
    patient = cast.__dict__["patients"][pseudonym]
    with cast.client(patient) as client:
        return [record.record_id for record in client.records(pseudonym)]


def write_export(root: Path, mrn: str, count: int) -> None:
    for index in range(count):
        folder = root / mrn / FOLDERS[index % len(FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc-{index:05d}.pdf").write_bytes(text_pdf([f"{mrn} document {index}"]))


def write_mapping(path: Path, mapping: dict[str, str]) -> Path:
    lines = ["mrn,pseudonym", *(f"{mrn},{pseudonym}" for mrn, pseudonym in mapping.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def command(cast: Cast, export: Path, mapping: Path, *extra: str | Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ehrgate",
        "--gateway",
        cast.url,
        "--as",
        str(cast.key_file("system")),
        "import-aria",
        str(export),
        "--mapping",
        str(mapping),
        *map(str, extra),
    ]


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")},
        "EHRGATE_KNOWN_LEDGERS": str(tmp_path / "pins.json"),
    }


def run_import(
    cast: Cast, export: Path, mapping: Path, tmp_path: Path, *extra: str | Path
) -> tuple[int, dict[str, Any], str]:
    result = subprocess.run(
        [*command(cast, export, mapping, *extra), "--json"],
        capture_output=True,
        text=True,
        env=environment(tmp_path),
        timeout=900,
        check=False,
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def import_export(cast: Cast, tmp_path: Path, count: int) -> None:
    pseudonym = fresh_patient(cast)
    export = tmp_path / "export"
    write_export(export, "MRN1", count)
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})

    started = time.perf_counter()
    code, report, stderr = run_import(cast, export, mapping, tmp_path)
    seconds = time.perf_counter() - started
    assert code == 0, (stderr, report["totals"])
    assert report["totals"]["uploaded"] == count
    imported = {o["record_id"] for o in report["outcomes"]}
    assert sorted(ledger_record_ids(cast, pseudonym)) == sorted(imported)
    print(f"\n{count} files imported in {seconds:.1f} s ({count / seconds:.0f} files/s)")

    code, again, stderr = run_import(cast, export, mapping, tmp_path)
    assert code == 0, stderr
    assert again["totals"]["uploaded"] == 0
    assert again["totals"]["already imported"] == count
    assert len(ledger_record_ids(cast, pseudonym)) == count


def test_an_export_of_1000_files_imports_and_a_rerun_uploads_nothing(
    cast: Cast, tmp_path: Path
) -> None:
    import_export(cast, tmp_path, 1000)


@pytest.mark.slow
def test_an_export_of_10000_files_imports_and_a_rerun_uploads_nothing(
    cast: Cast, tmp_path: Path
) -> None:
    import_export(cast, tmp_path, 10_000)


def _done(state: Path) -> int:
    if not state.exists():
        return 0
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        try:
            row = db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
    return int(row[0])


def test_a_killed_import_resumes_without_duplicates(cast: Cast, tmp_path: Path) -> None:
    count = 600
    pseudonym = fresh_patient(cast)
    export = tmp_path / "export"
    write_export(export, "MRN1", count)
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})
    state = tmp_path / "state.sqlite"
    process = subprocess.Popen(
        command(cast, export, mapping, "--state", state),
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while _done(state) < count // 4:
        assert process.poll() is None, "the import ended before it could be killed"
        assert time.monotonic() < deadline, "the import made no progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = _done(state)
    assert killed_after < count

    code, report, stderr = run_import(cast, export, mapping, tmp_path, "--state", state)
    assert code == 0, stderr
    totals = report["totals"]
    assert totals["uploaded"] + totals["already imported"] == count
    assert totals["already imported"] >= killed_after
    on_ledger = ledger_record_ids(cast, pseudonym)
    assert len(on_ledger) == count, "a file was recorded twice, or not at all"
    assert sorted(on_ledger) == sorted(o["record_id"] for o in report["outcomes"])


def test_every_skip_reason_is_reported(cast: Cast, tmp_path: Path) -> None:
    pseudonym = fresh_patient(cast)
    export = tmp_path / "export"
    write_export(export, "MRN1", 2)
    pdf = text_pdf(["x"])
    lab = export / "MRN1" / "Laboratory Results"
    (export / "MRN404" / "Laboratory Results").mkdir(parents=True)
    (export / "MRN404" / "Laboratory Results" / "stranger.pdf").write_bytes(pdf)
    (export / "MRN1" / "Billing").mkdir()
    (export / "MRN1" / "Billing" / "invoice.pdf").write_bytes(pdf)
    (lab / "notes.txt").write_text("not a pdf")
    (lab / "empty.pdf").write_bytes(b"")
    (lab / "link.pdf").symlink_to(lab / "doc-00000.pdf")
    os.mkfifo(lab / "pipe.pdf")
    (export / "loose.pdf").write_bytes(pdf)
    expected = {
        "MRN404/Laboratory Results/stranger.pdf": "MRN 'MRN404' is not in the MRN map",
        "MRN1/Billing/invoice.pdf": "category folder 'Billing' is not in the category table",
        "MRN1/Laboratory Results/notes.txt": "not a PDF",
        "MRN1/Laboratory Results/empty.pdf": "empty file",
        "MRN1/Laboratory Results/link.pdf": "symbolic link",
        "MRN1/Laboratory Results/pipe.pdf": "not a regular file",
        "loose.pdf": "not in the <MRN>/<category folder>/<file> layout",
    }
    if os.geteuid() != 0:  # root reads every file whatever its mode
        locked = lab / "locked.pdf"
        locked.write_bytes(pdf)
        locked.chmod(0)
        expected["MRN1/Laboratory Results/locked.pdf"] = "unreadable"
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})

    code, report, _ = run_import(cast, export, mapping, tmp_path)
    assert code == 2  # skipped, nothing failed
    outcomes = {o["file"]: o for o in report["outcomes"]}
    for relpath, reason in expected.items():
        assert outcomes[relpath]["status"] == "skipped", relpath
        assert reason in outcomes[relpath]["detail"], outcomes[relpath]
    assert report["totals"] == {
        "uploaded": 2,
        "already imported": 0,
        "skipped": len(expected),
        "failed": 0,
    }
    text = subprocess.run(
        command(cast, export, mapping), capture_output=True, text=True, env=environment(tmp_path)
    )
    assert text.returncode == 2
    for relpath, reason in expected.items():
        line = next(line for line in text.stdout.splitlines() if line.startswith(relpath))
        assert reason in line


def test_an_unreadable_file_is_skipped_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_export(tmp_path, "MRN1", 2)
    locked = tmp_path / "MRN1" / FOLDERS[1] / "doc-00001.pdf"
    real_open = Path.open

    def refusing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refusing_open)
    found = {
        item.relpath: item for item in scan_folder(tmp_path, {"MRN1": "a" * 64}, CategoryTable())
    }
    assert getattr(found["MRN1/Radiation Dose/doc-00001.pdf"], "reason", None) == (
        "unreadable (Permission denied)"
    )


def test_a_manifest_reports_its_own_problems(cast: Cast, tmp_path: Path) -> None:
    pseudonym = fresh_patient(cast)
    export = tmp_path / "export"
    write_export(export, "MRN1", 3)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "mrn,category,path,document_date\n"
        "MRN1,Laboratory Results,MRN1/Laboratory Results/doc-00000.pdf,2024-03-01\n"
        "MRN1,lab-results,MRN1/Radiation Dose/doc-00001.pdf,\n"
        "MRN1,Laboratory Results,MRN1/Laboratory Results/doc-00000.pdf,2024-03-01\n"
        "MRN1,Laboratory Results,../outside.pdf,\n"
        "MRN1,Laboratory Results,MRN1/missing.pdf,\n"
        "MRN1,Laboratory Results,MRN1/History and Physical/doc-00002.pdf,March\n"
    )
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})
    with cast.client(cast.__dict__["patients"][pseudonym]) as client:
        client.publish_keys(0, start="2024-03")  # the month of the dated document
    code, report, stderr = run_import(cast, export, mapping, tmp_path, "--manifest", manifest)
    assert code == 2, stderr
    details = sorted(o["detail"] for o in report["outcomes"] if o["status"] == "skipped")
    assert len(details) == 4
    assert any("listed again" in d for d in details)
    assert any("leaves the export folder" in d for d in details)
    assert any("does not exist" in d for d in details)
    assert any("is not YYYY-MM-DD" in d for d in details)
    assert report["totals"]["uploaded"] == 2
    patient = cast.__dict__["patients"][pseudonym]
    with cast.client(patient) as client:
        dates = sorted(record.created_at[:10] for record in client.records(pseudonym))
    assert "2024-03-01" in dates


def test_uploads_the_ledger_refuses_fail_and_resume_once_allowed(
    cast: Cast, tmp_path: Path
) -> None:
    pseudonym = fresh_patient(cast, writable=False)
    export = tmp_path / "export"
    write_export(export, "MRN1", 3)
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})
    code, report, _ = run_import(cast, export, mapping, tmp_path)
    assert code == 1
    assert report["totals"]["failed"] == 3
    assert all("may not write" in o["detail"] for o in report["outcomes"])

    patient = cast.__dict__["patients"][pseudonym]
    with cast.client(patient) as client:
        client.grant(
            cast.system.id,
            rights=["write"],
            categories="all",
            not_after=datetime.now(UTC) + timedelta(days=1),
        )
    code, report, _ = run_import(cast, export, mapping, tmp_path)
    assert code == 0
    assert report["totals"]["uploaded"] == 3


def test_a_gateway_that_is_down_exits_3(cast: Cast, tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_export(export, "MRN1", 1)
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": "a" * 64})
    argv = command(cast, export, mapping)
    argv[argv.index(cast.url)] = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(argv, capture_output=True, text=True, env=environment(tmp_path))
    assert result.returncode == 3
    assert "cannot connect" in result.stderr


def test_unusable_inputs_exit_2(cast: Cast, tmp_path: Path) -> None:
    export = tmp_path / "export"
    write_export(export, "MRN1", 1)
    bad_map = tmp_path / "bad.csv"
    bad_map.write_text("mrn,pseudonym\nMRN1,not-hex\n")
    for mapping, message in ((tmp_path / "none.csv", "no such file"), (bad_map, "64 hexadecimal")):
        result = subprocess.run(
            command(cast, export, mapping),
            capture_output=True,
            text=True,
            env=environment(tmp_path),
        )
        assert result.returncode == 2
        assert message in result.stderr


def test_a_document_of_a_month_without_published_keys_fails_saying_what_to_do(
    cast: Cast, tmp_path: Path
) -> None:
    pseudonym = fresh_patient(cast)
    export = tmp_path / "export"
    write_export(export, "MRN1", 1)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "mrn,category,path,document_date\n"
        "MRN1,Laboratory Results,MRN1/Laboratory Results/doc-00000.pdf,2005-05-05\n"
    )
    mapping = write_mapping(tmp_path / "map.csv", {"MRN1": pseudonym})
    code, report, _ = run_import(cast, export, mapping, tmp_path, "--manifest", manifest)
    assert code != 0
    [outcome] = report["outcomes"]
    assert outcome["status"] == "failed"
    assert "ehrgate patient publish-keys" in outcome["detail"]
