"""A store made of several stores: writes with a quorum, reads with verified fallback.

Writing: the source is read once and each chunk is handed to every member store at the same
time (one thread per member, bounded queues, so memory stays at a few chunks per member and
a slow member slows the write rather than filling memory). The write succeeds when at least
``write_quorum`` members hold the body; the locators of those members are returned. A
member that fails cleans up its own partial write (temporary file removed, multipart upload
aborted). If the quorum cannot be reached the write raises QuorumNotReached and returns no
locators, so no record can reference it; copies that did land on some members are then
orphans, removed by the garbage collector after its grace period (they are never deleted
here, because an equal body may already belong to a committed record).

Reading: members are tried in the configured order. Each copy is checked against the
SHA-256 and size from the ledger *before* any byte is handed out (bodies up to
``spool_memory`` bytes are held in memory, larger ones in a temporary file), so a corrupt or
truncated copy, or a member that fails half-way, falls back to the next member instead of
reaching the reader. Every member that failed is logged and passed to ``on_failure``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import IO, Final

from storage._config import check_store_name
from storage._streams import CHUNK_SIZE, BodyStream, check_sha256, iter_source
from storage.errors import (
    IntegrityError,
    InvalidLocator,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
    read_failure,
    write_failure,
)
from storage.types import BlobInfo, BlobStore, Source, StoredBlob

log = logging.getLogger(__name__)

FailureHook = Callable[[str, StorageError], None]

_END: Final = object()
_ABORT: Final = object()
_QUEUE_CHUNKS = 4


class _WriteAborted(Exception):
    """Raised inside a member's put() when the replicated write is given up."""


class _Feed:
    """One member's share of a replicated write: a bounded queue and the member's outcome."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.done = threading.Event()
        self.result: StoredBlob | None = None
        self.error: BaseException | None = None

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if item is _ABORT:
                raise _WriteAborted("the replicated write was given up")
            assert isinstance(item, bytes)
            yield item

    def offer(self, item: object) -> None:
        """Queue ``item`` unless the member has already stopped reading."""
        while not self.done.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def run(self, sha256: str | None) -> None:
        try:
            self.result = self.store.put(self.chunks(), sha256=sha256)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    @property
    def failed(self) -> bool:
        return self.done.is_set() and self.result is None


class ReplicatedStore:
    """Several stores kept as one: quorum writes, reads with verified fallback."""

    def __init__(
        self,
        stores: Sequence[BlobStore],
        *,
        write_quorum: int | None = None,
        name: str = "replicated",
        spool_memory: int = 16 * 1024 * 1024,
        on_failure: FailureHook | None = None,
    ) -> None:
        if not stores:
            raise StoreMisconfigured("a replicated store needs at least one store")
        names = [store.name for store in stores]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise StoreMisconfigured(
                f"several stores are named {', '.join(map(repr, duplicates))}: locators could "
                "not tell them apart; give each a distinct ?name=... in its URL"
            )
        quorum = len(stores) if write_quorum is None else write_quorum
        if not 1 <= quorum <= len(stores):
            raise StoreMisconfigured(
                f"write_quorum={write_quorum} must be between 1 and the number of stores "
                f"({len(stores)})"
            )
        self._stores = tuple(stores)
        self._quorum = quorum
        self._name = check_store_name(name)
        self._spool_memory = spool_memory
        self._on_failure = on_failure

    @property
    def name(self) -> str:
        return self._name

    @property
    def stores(self) -> tuple[BlobStore, ...]:
        return self._stores

    @property
    def write_quorum(self) -> int:
        return self._quorum

    def __repr__(self) -> str:
        return f"ReplicatedStore({list(self._stores)!r}, write_quorum={self._quorum})"

    def _report(self, store: str, error: StorageError, what: str) -> None:
        log.warning("store %r failed %s: %s", store, what, error)
        if self._on_failure is not None:
            self._on_failure(store, error)

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        """Check every member; a misconfigured member is an error, and so is having fewer
        reachable members than the write quorum."""
        failures: list[tuple[str, StorageError]] = []
        for store in self._stores:
            try:
                store.check()
            except StoreUnavailable as exc:
                failures.append((store.name, exc))
                self._report(store.name, exc, "its check")
        reachable = len(self._stores) - len(failures)
        if reachable < self._quorum:
            detail = "; ".join(f"{name}: {error}" for name, error in failures)
            raise StoreUnavailable(
                f"only {reachable} of {len(self._stores)} stores are reachable, fewer than the "
                f"write quorum of {self._quorum}: {detail}",
                store=self._name,
                failures=failures,
            )

    def owns(self, locator: str) -> bool:
        return any(store.owns(locator) for store in self._stores)

    def _owner(self, locator: str) -> BlobStore:
        for store in self._stores:
            if store.owns(locator):
                return store
        raise InvalidLocator(
            f"locator {locator!r} names none of the stores "
            f"{', '.join(store.name for store in self._stores)}",
            store=self._name,
        )

    # -- put ----------------------------------------------------------------------------

    def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
        if sha256 is not None:
            check_sha256(sha256)
        feeds = [_Feed(store) for store in self._stores]
        threads = [
            threading.Thread(
                target=feed.run, args=(sha256,), name=f"put-{feed.store.name}", daemon=True
            )
            for feed in feeds
        ]
        for thread in threads:
            thread.start()
        try:
            for chunk in iter_source(source):
                for feed in feeds:
                    feed.offer(chunk)
                if sum(not feed.failed for feed in feeds) < self._quorum:
                    break
            else:
                for feed in feeds:
                    feed.offer(_END)
        except BaseException:
            for feed in feeds:
                feed.offer(_ABORT)
            raise
        finally:
            # Members still waiting for data after a break are told to give up.
            for feed in feeds:
                if not feed.done.is_set():
                    feed.offer(_ABORT)
            for thread in threads:
                thread.join()
        return self._outcome(feeds)

    def _outcome(self, feeds: list[_Feed]) -> StoredBlob:
        stored = [feed.result for feed in feeds if feed.result is not None]
        failures: list[tuple[str, StorageError]] = []
        for feed in feeds:
            if feed.result is not None or isinstance(feed.error, _WriteAborted):
                continue
            error = feed.error
            if not isinstance(error, StorageError):
                assert error is not None
                raise error  # a programming error or interrupt in a member: not a store fault
            failures.append((feed.store.name, error))
            self._report(feed.store.name, error, "a write")
        if len({blob.sha256 for blob in stored}) > 1:
            raise IntegrityError(
                "stores disagree about the SHA-256 of the same upload: "
                + ", ".join(f"{f.store.name}={f.result.sha256}" for f in feeds if f.result),
                store=self._name,
            )
        if len(stored) >= self._quorum:
            return StoredBlob(
                sha256=stored[0].sha256,
                size=stored[0].size,
                locators=tuple(loc for blob in stored for loc in blob.locators),
            )
        detail = "; ".join(f"{name}: {error}" for name, error in failures)
        raise write_failure(
            f"the body reached {len(stored)} of {len(feeds)} stores, fewer than the write "
            f"quorum of {self._quorum}, so it is not stored: {detail}",
            failures,
            store=self._name,
        )

    # -- get ----------------------------------------------------------------------------

    def get(
        self, locators: Sequence[str], *, sha256: str, size: int | None = None
    ) -> Iterator[bytes]:
        check_sha256(sha256)
        failures: list[tuple[str, StorageError]] = []
        for store in self._stores:
            # Owned by the returned BodyStream on success, closed here on failure.
            spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=self._spool_memory)  # noqa: SIM115
            try:
                with contextlib.closing(
                    BodyStream(iter(store.get(locators, sha256=sha256, size=size)), _noop)
                ) as body:
                    for chunk in body:
                        spool.write(chunk)
            except StorageError as exc:
                spool.close()
                failures.append((store.name, exc))
                self._report(store.name, exc, f"to serve {sha256}")
                continue
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return BodyStream(_read_spool(spool), spool.close)
        detail = "; ".join(f"{name}: {error}" for name, error in failures)
        raise read_failure(
            f"no member of store {self._name!r} could serve {sha256}: {detail}",
            failures,
            store=self._name,
        )

    # -- head, delete, list -------------------------------------------------------------

    def head(self, locator: str) -> BlobInfo:
        return self._owner(locator).head(locator)

    def delete(self, locator: str) -> None:
        self._owner(locator).delete(locator)

    def list(self) -> Iterator[BlobInfo]:
        for store in self._stores:
            yield from store.list()

    def sweep_partials(self, older_than: datetime) -> int:
        removed = 0
        for store in self._stores:
            sweep = getattr(store, "sweep_partials", None)
            if callable(sweep):
                removed += int(sweep(older_than))
        return removed

    def close(self) -> None:
        for store in self._stores:
            store.close()


def _noop() -> None:
    return None


def _read_spool(spool: IO[bytes]) -> Iterator[bytes]:
    while chunk := spool.read(CHUNK_SIZE):
        yield chunk
