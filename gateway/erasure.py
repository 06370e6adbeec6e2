"""Erasure at the gateway: after an `erase` is on the ledger, delete every copy it left.

An erased record leaves nothing that opens it: its capsules (the current one and any a
rekey replaced) are deleted from the ledger database (`ledger_capsules`) and from every
blob store (the content-addressed copies), and its body from every store that allows it
(local, S3: deleted; IPFS: unpinned and its blocks removed from the node). A blob that a
record not erased also names (the same bytes committed twice) is kept for that record.

The `erase` entry is the act: it is committed first, so a store that is down does not stop
it. What could not be deleted is reported as pending; `ehrgate gc` (gateway.gc) deletes the
erased records' blobs whatever their age, and `ledger verify` names a capsule still stored
for an erased record, so an unfinished erasure is seen and finished, never forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from ledger.errors import LedgerError
from ledger.queries import LedgerQueries
from storage import BlobStore, erase_blobs

log = logging.getLogger("gateway.erasure")

DATABASE = "database"
"""The locator named for the ledger database's capsule rows in a report."""


@dataclass(slots=True)
class Deletions:
    """What was deleted for an erasure, and what is left (locator, problem)."""

    deleted: int = 0
    pending: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.pending


def erased_by(ledger: LedgerQueries, body: dict[str, object], index: int) -> list[str]:
    """The records the `erase` entry at *index* (with *body*) erased (blocking for a
    patient-wide erase: it reads the state)."""
    if body.get("scope") == "record":
        return [str(body["record_id"])]
    erased = ledger.erasures_of(str(body["pseudonym"]))
    return [e.record_id for e in erased if e.entry_index == index]


def delete_erased(ledger: LedgerQueries, store: BlobStore, record_ids: Sequence[str]) -> Deletions:
    """Delete the capsules and bodies of the erased *record_ids* from the database and
    every store (blocking: run it in a worker thread). Never raises for a store or the
    database being down: what is left is in the result."""
    result = Deletions()
    try:
        blobs: dict[str, list[str]] = {}
        capsules: set[str] = set()
        for record_id in record_ids:
            record = ledger.record(record_id)
            if record is not None:
                blobs.setdefault(record.body_sha256, []).extend(record.locators)
            named = ledger.record_capsules(record_id)
            capsules.update(named)
            for sha256 in named:
                blobs.setdefault(sha256, [])
        in_use = ledger.blobs_in_use(set(blobs))
        for sha256 in in_use:
            log.info("blob %s stays: a record not erased names it too", sha256)
            blobs.pop(sha256, None)
        result.deleted += ledger.delete_capsules(capsules - in_use)
    except (LedgerError, sa.exc.SQLAlchemyError) as exc:
        log.warning("the erasure of %s could not use the database: %s", record_ids, exc)
        result.pending.append((DATABASE, f"the ledger database is unavailable: {exc}"))
        return result
    report = erase_blobs(store, blobs)
    result.deleted += len(report.deleted)
    result.pending.extend(report.failed)
    return result


__all__ = ["DATABASE", "Deletions", "delete_erased", "erased_by"]
