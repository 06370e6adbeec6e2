"""Re-keying at the gateway: checking a patient's batch of rewrapped capsules, committing
their `rekey` entries together, and deleting every copy of the capsules they replace.

The gateway cannot open a capsule, but it can tell a rewrap of a record's capsule from
anything else without a key: a rewrap keeps the encrypted metadata byte for byte, and the
new capsule must be a version 2 capsule with one entry, the patient's scoped key of the
record's category and month. Whether that key is the new generation's only the patient can
check (its SDK opens each rewrapped capsule with the new K before sending it).

The old capsule opens with the leaked K, so each copy goes: the database row in the same
transaction as the rekey (the ledger's committer), the stores' copies right after. So that
a gateway stopping in between leaves nothing behind, the stores' locators of each old
capsule are written to `gateway_rekey_deletions` before the commit and removed only once
deleted; every later rekey call finishes what such rows name (`sweep`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa

from envelope import EnvelopeError, InvalidEnvelope
from envelope.capsule import SCOPED_CAPSULE_VERSION, capsule_outline
from envelope.scoped import key_id, record_period
from gateway.backends import Backends
from gateway.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.schema import rekey_deletions
from gateway.transactions import signed_capsule
from ledger.results import Record
from ledger.wire.transactions import Transaction
from storage.errors import StorageError

log = logging.getLogger("gateway.rekeying")
T = TypeVar("T")
R = TypeVar("R")


STORE_THREADS = 16
"""Store writes and deletions of one batch run this many at a time: each waits mostly on
the store (an fsync, a request), so they overlap."""

STALE_DELETION = timedelta(minutes=10)
"""A deletion row whose rekey never committed is dropped after this long (the request
that wrote it has certainly ended)."""


@dataclass(frozen=True, slots=True)
class RekeyItem:
    """One checked rekey: the transaction, its record, the new and the old capsule."""

    tx: Transaction
    record: Record
    capsule: bytes
    old_capsule: bytes


def check_item(backends: Backends, pseudonym: str, tx: Transaction, capsule_text: str) -> RekeyItem:
    """A rekey of one of *pseudonym*'s records to a rewrap of its current capsule, or a
    clear refusal (nothing is stored before every item of a batch passed)."""
    record_id = tx.body.get("record_id")
    record = backends.ledger.cached_record(record_id) if isinstance(record_id, str) else None
    if record is None:
        raise NotFound(f"record {record_id!r} does not exist")
    if record.pseudonym != pseudonym:
        raise Forbidden(
            f"record {record_id} is not a record of patient {pseudonym}: a patient re-keys "
            "only its own records"
        )
    capsule = signed_capsule(tx, capsule_text)
    old = backends.ledger.capsule(record.capsule_sha256)
    if old is None:
        raise ValidationFailed(f"record {record_id} has no stored capsule left to rewrap")
    _check_rewrap(record, pseudonym, old, capsule)
    return RekeyItem(tx, record, capsule, old)


def check_sealed_to_current_keys(
    backends: Backends, body: dict[str, object], capsule: bytes, key_generation: int | None
) -> None:
    """A record committed for a patient that rotated its K must be sealed to a scoped key
    (not to the single record key of its first K), and an uploader that says which
    generation it sealed to must name the current one (else: Conflict, code
    "stale-key-generation": fetch the published key again and seal anew)."""
    pseudonym, category, created_at = (
        body.get("pseudonym"),
        body.get("category"),
        body.get("created_at"),
    )
    if not isinstance(pseudonym, str):
        return  # the ledger's rules name the problem
    current, _ = backends.ledger.key_generation(pseudonym)
    if key_generation is not None and key_generation != current:
        raise Conflict(
            f"the capsule is sealed to generation {key_generation} of patient {pseudonym}'s "
            f"keys, but the patient rotated its key (generation {current}): fetch its "
            "published key again and seal anew",
            extensions={"code": "stale-key-generation"},
        )
    if current == 1 or not isinstance(category, str) or not isinstance(created_at, str):
        return
    try:
        outline = capsule_outline(capsule)
        expected = key_id(category, record_period(created_at))
    except EnvelopeError as exc:
        raise ValidationFailed("the capsule is malformed") from exc
    if outline.recipients.get(pseudonym) != expected:
        raise ValidationFailed(
            f"patient {pseudonym} rotated its key: a record is sealed to its published key "
            f"{expected}, not to its record key of before the rotation"
        )


def _check_rewrap(record: Record, pseudonym: str, old: bytes, new: bytes) -> None:
    try:
        outline, before = capsule_outline(new), capsule_outline(old)
    except InvalidEnvelope as exc:
        raise ValidationFailed(
            f"the new capsule of record {record.record_id} is malformed"
        ) from exc
    expected = key_id(record.category, record_period(record.created_at))
    if outline.version != SCOPED_CAPSULE_VERSION or outline.recipients != {pseudonym: expected}:
        raise ValidationFailed(
            f"a rekeyed capsule of record {record.record_id} has exactly one entry, the "
            f"patient's scoped key {expected} (version 2); this one has "
            f"{sorted((k, v or 'record key') for k, v in outline.recipients.items())}"
        )
    if outline.meta != before.meta:
        raise ValidationFailed(
            f"the new capsule is not a rewrap of record {record.record_id}'s capsule (its "
            "encrypted metadata differs): rewrap the record's own capsule"
        )


def sweep(backends: Backends) -> int:
    """Finish the deletions earlier rekeys left: a row whose record no longer names its
    capsule (the rekey committed) loses its stores' copies; a row whose rekey never
    committed and is old is dropped. Returns how many copies were deleted."""
    t = rekey_deletions
    ledger = backends.ledger
    with ledger.engine.connect() as conn:
        rows = list(conn.execute(sa.select(t)))
    deleted = 0
    stale = (datetime.now(UTC) - STALE_DELETION).isoformat()
    for row in rows:
        record = ledger.cached_record(row.record_id)
        if record is not None and record.capsule_sha256 == row.sha256:
            if row.queued_at >= stale:
                continue  # a rekey still under way
        else:
            locators = json.loads(row.locators)
            if not _delete_copies(backends, row.sha256, locators):
                continue  # tried again by the next sweep
            deleted += len(locators)
        with ledger.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.sha256 == row.sha256))
    return deleted


def in_parallel(work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """*work* on each item, STORE_THREADS at a time, results in order (first error raised)."""
    with ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="rekey-store") as pool:
        return list(pool.map(work, items))


def store_new(backends: Backends, items: list[RekeyItem]) -> None:
    """The second copy of each new capsule, content addressed, next to the bodies."""
    in_parallel(lambda item: backends.store.put([item.capsule]), items)


def queue_deletions(backends: Backends, items: list[RekeyItem]) -> None:
    """Before the commit: name every store copy of each old capsule (a put of the same
    bytes is idempotent and returns where each store keeps it)."""
    now = datetime.now(UTC).isoformat()
    stored = in_parallel(lambda item: backends.store.put([item.old_capsule]), items)
    rows = [
        {
            "sha256": copy.sha256,
            "record_id": item.record.record_id,
            "locators": json.dumps(list(copy.locators)),
            "queued_at": now,
        }
        for item, copy in zip(items, stored, strict=True)
    ]
    t = rekey_deletions
    with backends.ledger.engine.begin() as conn:
        known = {
            sha
            for (sha,) in conn.execute(
                sa.select(t.c.sha256).where(t.c.sha256.in_([r["sha256"] for r in rows]))
            )
        }
        fresh = [r for r in rows if r["sha256"] not in known]
        if fresh:
            conn.execute(t.insert(), fresh)


def finish_deletions(backends: Backends, done: list[RekeyItem], refused: list[RekeyItem]) -> None:
    """After the commit: delete the stores' copies of the replaced capsules, and the new
    copies of refused rekeys; then drop their rows."""
    t = rekey_deletions
    with backends.ledger.engine.connect() as conn:
        rows = {
            r.sha256: json.loads(r.locators)
            for r in conn.execute(
                sa.select(t).where(
                    t.c.sha256.in_([i.record.capsule_sha256 for i in done + refused])
                )
            )
        }
    olds = [item.record.capsule_sha256 for item in done]
    deleted = in_parallel(lambda sha: _delete_copies(backends, sha, rows.get(sha, [])), olds)
    finished = [sha for sha, ok in zip(olds, deleted, strict=True) if ok]
    for item in refused:
        finished.append(item.record.capsule_sha256)  # still the record's: nothing to delete
        new = str(item.tx.body["capsule_sha256"])
        if not backends.ledger.capsule_referenced(new):
            try:
                stored = backends.store.put([item.capsule])
            except StorageError as exc:
                log.warning("the refused capsule %s stays for the gc: %s", new, exc)
                continue
            _delete_copies(backends, new, list(stored.locators))
    with backends.ledger.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.sha256.in_(finished)))


def _delete_copies(backends: Backends, sha256: str, locators: list[str]) -> bool:
    """Delete each copy; False if one could not be (its row stays for the next sweep)."""
    ok = True
    for locator in locators:
        try:
            backends.store.delete(locator)
        except StorageError as exc:
            log.warning("the replaced capsule %s stays at %s for now: %s", sha256, locator, exc)
            ok = False
    return ok
