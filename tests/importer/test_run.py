"""Running an import: uploads once, resumes after a crash, reports every skip."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrgate.importer import CategoryTable, Journal, run_import, scan_folder
from ehrgate.importer.errors import ImportConfigError
from ehrgate.importer.run import Status
from ehrgate.importer.source import Candidate
from tests.importer.conftest import LedgerLikeUploader


def test_import_uploads_candidates_and_reports_skips(
    export: Path, mrn_map: dict[str, str], uploader: LedgerLikeUploader, tmp_path: Path
) -> None:
    with Journal(tmp_path / "state.db") as journal:
        summary = run_import(
            scan_folder(export, mrn_map, CategoryTable()), uploader, journal, concurrency=3
        )
    assert summary.count(Status.UPLOADED) == 3
    assert summary.count(Status.SKIPPED) == 5
    assert not summary.ok
    assert len(uploader.records) == 3


def test_rerun_uploads_nothing(
    export: Path, mrn_map: dict[str, str], uploader: LedgerLikeUploader, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    with Journal(state) as journal:
        run_import(scan_folder(export, mrn_map, CategoryTable()), uploader, journal)
    attempts = uploader.attempts
    with Journal(state) as journal:
        summary = run_import(scan_folder(export, mrn_map, CategoryTable()), uploader, journal)
    assert uploader.attempts == attempts
    assert summary.count(Status.ALREADY_IMPORTED) == 3
    assert summary.count(Status.UPLOADED) == 0


class _CrashAfterUpload(LedgerLikeUploader):
    """Uploads, then dies before the importer can journal the acknowledgement."""

    def upload_candidate(self, candidate: Candidate, record_id: str) -> None:
        super().upload_candidate(candidate, record_id)
        raise SystemExit("killed")


def test_resume_after_crash_does_not_duplicate(
    export: Path, mrn_map: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    crashing = _CrashAfterUpload()
    with pytest.raises(SystemExit), Journal(state) as journal:
        run_import(scan_folder(export, mrn_map, CategoryTable()), crashing, journal, concurrency=1)
    crashed_after = len(crashing.records)
    assert crashed_after >= 1

    resumed = LedgerLikeUploader()
    resumed.records = dict(crashing.records)
    with Journal(state) as journal:
        summary = run_import(scan_folder(export, mrn_map, CategoryTable()), resumed, journal)
    assert len(resumed.records) == 3
    assert summary.count(Status.ALREADY_IMPORTED) == crashed_after
    assert summary.count(Status.UPLOADED) == 3 - crashed_after


class _FailingUploader(LedgerLikeUploader):
    def upload_candidate(self, candidate: Candidate, record_id: str) -> None:
        if candidate.category == "radiation-dose":
            raise ConnectionError("gateway unavailable")
        super().upload_candidate(candidate, record_id)


def test_failed_upload_is_reported_and_retried_next_run(
    export: Path, mrn_map: dict[str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    failing = _FailingUploader()
    with Journal(state) as journal:
        summary = run_import(scan_folder(export, mrn_map, CategoryTable()), failing, journal)
    failed = [o for o in summary.outcomes if o.status is Status.FAILED]
    assert [o.detail for o in failed] == ["gateway unavailable"]

    healthy = LedgerLikeUploader()
    healthy.records = dict(failing.records)
    with Journal(state) as journal:
        again = run_import(scan_folder(export, mrn_map, CategoryTable()), healthy, journal)
    assert again.count(Status.UPLOADED) == 1
    assert again.count(Status.ALREADY_IMPORTED) == 2


def test_changed_file_content_is_a_new_upload(
    export: Path, mrn_map: dict[str, str], uploader: LedgerLikeUploader, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    with Journal(state) as journal:
        run_import(scan_folder(export, mrn_map, CategoryTable()), uploader, journal)
    target = export / "MRN001" / "Laboratory Results" / "cbc.pdf"
    target.write_bytes(target.read_bytes() + b"\n% corrected")
    with Journal(state) as journal:
        summary = run_import(scan_folder(export, mrn_map, CategoryTable()), uploader, journal)
    assert summary.count(Status.UPLOADED) == 1
    assert len(uploader.records) == 4


def test_state_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    state.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ImportConfigError, match="not a usable import state file"):
        Journal(state)
