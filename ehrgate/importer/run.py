"""Running an import: bounded concurrent uploads over the candidates, journalled so that a
re-run or a resumed run uploads nothing twice, with one Outcome per file."""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Protocol

from ehrgate.errors import RecordExists
from ehrgate.importer.journal import Journal
from ehrgate.importer.source import Candidate, Skip


class Uploader(Protocol):
    """Uploads one file as a record with a caller-chosen id; raises RecordExists when the
    ledger already holds a record with that id (the file was imported before)."""

    def upload_candidate(self, candidate: Candidate, record_id: str) -> None: ...


class Status(enum.StrEnum):
    UPLOADED = "uploaded"
    ALREADY_IMPORTED = "already imported"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    relpath: str
    status: Status
    detail: str = ""
    record_id: str | None = None


@dataclass
class ImportSummary:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status is status)

    @property
    def ok(self) -> bool:
        """True when nothing was skipped and nothing failed."""
        return all(o.status in (Status.UPLOADED, Status.ALREADY_IMPORTED) for o in self.outcomes)

    def totals(self) -> dict[str, int]:
        counter = Counter(outcome.status for outcome in self.outcomes)
        return {status.value: counter.get(status, 0) for status in Status}


def file_sha256(candidate: Candidate) -> str:
    digest = hashlib.sha256()
    with candidate.path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def import_one(candidate: Candidate, uploader: Uploader, journal: Journal) -> Outcome:
    """Upload one file unless the journal says it was; every failure becomes its Outcome."""
    try:
        sha256 = file_sha256(candidate)
    except OSError as exc:
        return Outcome(candidate.relpath, Status.SKIPPED, f"unreadable ({exc.strerror})")
    entry = journal.begin(candidate.relpath, sha256)
    if entry.done:
        return Outcome(candidate.relpath, Status.ALREADY_IMPORTED, "", entry.record_id)
    try:
        uploader.upload_candidate(candidate, entry.record_id)
    except RecordExists:
        journal.finish(entry.record_id)
        return Outcome(candidate.relpath, Status.ALREADY_IMPORTED, "", entry.record_id)
    except Exception as exc:  # every failure is reported per file; the run goes on
        return Outcome(candidate.relpath, Status.FAILED, str(exc) or type(exc).__name__)
    journal.finish(entry.record_id)
    return Outcome(candidate.relpath, Status.UPLOADED, "", entry.record_id)


def run_import(
    items: Iterable[Candidate | Skip],
    uploader: Uploader,
    journal: Journal,
    *,
    concurrency: int = 4,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> ImportSummary:
    """Upload every Candidate (at most *concurrency* at once); report every Skip."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    summary = ImportSummary()

    def record(outcome: Outcome) -> None:
        summary.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="import") as pool:
        pending: set[Future[Outcome]] = set()
        for item in items:
            if isinstance(item, Skip):
                record(Outcome(item.relpath, Status.SKIPPED, item.reason))
                continue
            if len(pending) >= concurrency * 2:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    record(future.result())
            pending.add(pool.submit(import_one, item, uploader, journal))
        for future in pending:
            record(future.result())
    return summary
