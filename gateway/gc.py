"""Orphan collection: remove bodies that are in the blob stores but referenced by no record.

An upload stores the sealed body first and commits its `record` second, so a crash or a
refused commit in between leaves an orphan. `collect_orphans` asks the ledger which blobs it
references (`LedgerQueries.referenced_blobs`: every record's body and capsule, and every
capsule the ledger still keeps) and has `storage.collect_garbage` remove the other blobs
older than the grace period. It takes the ledger database URL and the store URLs that a
gateway's settings name (`database_url`, `store_urls`) and needs no ledger key: it never
writes the log, which a running gateway may go on writing.

It also finishes erasures (`gateway.erasure`): every body and capsule of an erased record
that no record left unerased names is deleted from the stores whatever its age, and its
capsule rows from the ledger database, so an erasure a store was down for ends here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa

from gateway.errors import ServiceUnavailable
from ledger.errors import LedgerError
from ledger.queries import open_read_only
from storage import GcReport, StorageError, StoreMisconfigured, collect_garbage, open_store


class GcFailed(ServiceUnavailable):
    """The ledger or a store could not be read; nothing was deleted."""


class GcMisconfigured(GcFailed):
    """A store URL is wrong (unknown scheme, bad option): fix the command line."""


def referenced_blobs(database_url: str) -> set[str]:
    """SHA-256 of every blob the ledger at *database_url* still needs."""
    return _read_ledger(database_url, dry_run=True)[0]


def _read_ledger(database_url: str, *, dry_run: bool) -> tuple[set[str], set[str]]:
    """(referenced, erased): the blobs the ledger needs, and those of erased records that
    must go; unless *dry_run*, the erased records' capsule rows are deleted too."""
    try:
        queries = open_read_only(database_url)
        try:
            referenced = queries.referenced_blobs()
            bodies, capsules = queries.erased_blobs()
            if not dry_run:
                queries.delete_capsules(capsules)
            return referenced, (bodies | capsules) - referenced
        finally:
            queries.close()
    except (LedgerError, sa.exc.SQLAlchemyError) as exc:
        raise GcFailed(f"cannot read the ledger at {database_url}: {exc}") from exc


def collect_orphans(
    database_url: str,
    store_urls: Sequence[str],
    *,
    grace: timedelta,
    dry_run: bool = False,
) -> GcReport:
    """Delete (or with *dry_run* only list) the orphans older than *grace* in the stores,
    and what erasures left.

    Raises GcFailed if the ledger or a store cannot be reached (GcMisconfigured for a wrong
    store URL); a blob that could not be deleted is named in the report instead.
    """
    referenced, erased = _read_ledger(database_url, dry_run=dry_run)
    try:
        store = open_store(list(store_urls), write_quorum=1)
        try:
            return collect_garbage(store, referenced, grace=grace, dry_run=dry_run, erased=erased)
        finally:
            store.close()
    except StoreMisconfigured as exc:
        raise GcMisconfigured(str(exc)) from exc
    except StorageError as exc:
        raise GcFailed(str(exc)) from exc


__all__ = ["GcFailed", "GcMisconfigured", "GcReport", "collect_orphans", "referenced_blobs"]
