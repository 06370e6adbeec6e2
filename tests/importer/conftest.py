"""Builders for ARIA-style export trees and an uploader that behaves like the ledger."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ehrgate.errors import RecordExists
from ehrgate.importer import Candidate

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
PSEUDONYM_A = "a" * 64
PSEUDONYM_B = "b" * 64


class LedgerLikeUploader:
    """Keeps what was uploaded; refuses a second record with the same id, as the ledger does."""

    def __init__(self) -> None:
        self.records: dict[str, Candidate] = {}
        self.attempts = 0
        self._lock = threading.Lock()

    def upload_candidate(self, candidate: Candidate, record_id: str) -> None:
        with self._lock:
            self.attempts += 1
            if record_id in self.records:
                raise RecordExists(record_id)
            self.records[record_id] = candidate


@pytest.fixture
def uploader() -> LedgerLikeUploader:
    return LedgerLikeUploader()


def write(path: Path, data: bytes = PDF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A small export: two known patients, one unknown, and one of each bad file."""
    root = tmp_path / "export"
    write(root / "MRN001" / "Laboratory Results" / "cbc.pdf", PDF + b"cbc")
    write(root / "MRN001" / "History and Physical" / "hp.pdf", PDF + b"hp")
    write(root / "MRN002" / "Radiation Dose" / "dose.pdf", PDF + b"dose")
    write(root / "MRN999" / "Laboratory Results" / "stranger.pdf", PDF + b"x")
    write(root / "MRN001" / "Billing" / "invoice.pdf", PDF + b"bill")
    write(root / "MRN001" / "Laboratory Results" / "notes.txt", b"not a pdf")
    write(root / "MRN002" / "Laboratory Results" / "empty.pdf", b"")
    write(root / "loose.pdf", PDF)
    return root


@pytest.fixture
def mrn_map() -> dict[str, str]:
    return {"MRN001": PSEUDONYM_A, "MRN002": PSEUDONYM_B}
