"""Garbage collection of orphan bodies: stored, but referenced by no committed record.

An upload stores the body first and commits the record that references it second; a
crash or a refused commit in between leaves an orphan. The caller (the gateway) supplies
the SHA-256 of every body its committed records reference; a body is removed only if it
is not among them *and* was last written longer than ``grace`` ago, so an upload still on
its way to its commit is never touched (re-uploading an equal body refreshes its time).
Just before removal the body is looked at once more, which closes most of the window in
which an equal body could be re-uploaded between the listing and the removal.

Blobs named in ``erased`` (the bodies and capsules of erased records, which no record left
unerased needs) are removed whatever their age: that finishes an erasure a store was down
for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set
from datetime import UTC, datetime, timedelta
from typing import Literal

from storage.errors import BlobNotFound, StorageError
from storage.types import BlobStore, GcReport

log = logging.getLogger(__name__)


def collect_garbage(
    store: BlobStore,
    referenced: Set[str],
    *,
    grace: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
    erased: Set[str] = frozenset(),
) -> GcReport:
    """Remove every body in ``store`` that is not in ``referenced`` (SHA-256 hex digests)
    and older than ``grace``, and every one in ``erased`` (not in ``referenced``) at once;
    also sweep partial uploads older than ``grace``."""
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    members: Sequence[BlobStore] | None = getattr(store, "stores", None)
    if members is not None:
        # A replicated store is collected member by member, so that each copy is removed
        # from the store that holds it.
        reports = [
            collect_garbage(
                member, referenced, grace=grace, now=moment, dry_run=dry_run, erased=erased
            )
            for member in members
        ]
        return GcReport(
            examined=sum(r.examined for r in reports),
            kept_referenced=sum(r.kept_referenced for r in reports),
            kept_young=sum(r.kept_young for r in reports),
            deleted=tuple(loc for r in reports for loc in r.deleted),
            failed=tuple(item for r in reports for item in r.failed),
            dry_run=dry_run,
        )
    return _collect_one(store, referenced, cutoff=moment - grace, dry_run=dry_run, erased=erased)


def _collect_one(
    store: BlobStore,
    referenced: Set[str],
    *,
    cutoff: datetime,
    dry_run: bool,
    erased: Set[str] = frozenset(),
) -> GcReport:
    """``collect_garbage`` for one store that is not made of others."""
    examined = kept_referenced = kept_young = 0
    deleted: list[str] = []
    failed: list[tuple[str, str]] = []
    for info in list(store.list()):
        examined += 1
        if info.sha256 in referenced:
            kept_referenced += 1
        elif info.sha256 in erased:
            error = None if dry_run else _remove_erased(store, info.locator)
            if error is None:
                deleted.append(info.locator)
            else:
                failed.append((info.locator, str(error)))
        elif info.modified >= cutoff:
            kept_young += 1
        elif dry_run:
            deleted.append(info.locator)
        else:
            outcome = _remove_orphan(store, info.locator, cutoff)
            if outcome == "deleted":
                deleted.append(info.locator)
            elif outcome == "young":
                kept_young += 1  # written again since the listing
            elif isinstance(outcome, StorageError):
                failed.append((info.locator, str(outcome)))
    if not dry_run:
        failure = _sweep_partials(store, cutoff)
        if failure is not None:
            failed.append((store.name, failure))
    return GcReport(
        examined=examined,
        kept_referenced=kept_referenced,
        kept_young=kept_young,
        deleted=tuple(deleted),
        failed=tuple(failed),
        dry_run=dry_run,
    )


def _remove_erased(store: BlobStore, locator: str) -> StorageError | None:
    """Remove a blob of an erased record at once (no grace); the error that stopped it."""
    try:
        store.delete(locator)
    except BlobNotFound:
        pass
    except StorageError as exc:
        log.warning("could not remove erased blob %s: %s", locator, exc)
        return exc
    return None


def _remove_orphan(
    store: BlobStore, locator: str, cutoff: datetime
) -> Literal["deleted", "young", "gone"] | StorageError:
    """Look at an orphan once more and remove it: "deleted", "young" (written again since
    the listing), "gone" (removed by someone else), or the error that stopped it."""
    try:
        if store.head(locator).modified >= cutoff:
            return "young"
        store.delete(locator)
    except BlobNotFound:
        return "gone"
    except StorageError as exc:
        log.warning("could not remove orphan %s: %s", locator, exc)
        return exc
    return "deleted"


def _sweep_partials(store: BlobStore, cutoff: datetime) -> str | None:
    """Sweep the partial uploads of a store that has them; the error message if that failed."""
    sweep = getattr(store, "sweep_partials", None)
    if not callable(sweep):
        return None
    try:
        sweep(cutoff)
    except StorageError as exc:
        log.warning("could not sweep partial uploads of %s: %s", store.name, exc)
        return str(exc)
    return None
