"""The local-directory blob store (``file:///path``): the embedded default.

Layout under the root: ``blobs/ab/<sha256>`` for bodies and ``incoming/`` for uploads in
progress. A body is written to a temporary file in ``incoming/`` (same file system),
fsynced, renamed into place and the directory fsynced, so a crash leaves either the whole
body or none of it; a leftover temporary file is removed by ``sweep_partials``.

Locators are ``file://<name>/blobs/ab/<sha256>``: the store's configured name (default
``local``), never the host path of the root.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from storage._config import StoreURL, check_store_name
from storage._keyed import KeyedStore, Opened
from storage._streams import CHUNK_SIZE, blob_key, sha256_of_key
from storage.errors import BlobNotFound, StorageError, StoreMisconfigured, StoreUnavailable
from storage.types import BlobInfo, Source, StoredBlob

_PARAMS = ("name", "fsync")
_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def _map_errors(store: str, what: str) -> Iterator[None]:
    """Translate OS errors into the storage exception tree (the one place that does)."""
    try:
        yield
    except StorageError:
        raise
    except FileNotFoundError as exc:
        raise BlobNotFound(f"store {store!r} has no {what}", store=store) from exc
    except PermissionError as exc:
        raise StoreMisconfigured(
            f"store {store!r}: permission denied for {what} ({exc.strerror}); "
            "give the ehrgate user read and write access to the store directory",
            store=store,
        ) from exc
    except OSError as exc:
        if exc.errno in _FULL:
            raise StoreUnavailable(
                f"store {store!r} is full while writing {what}: free space or add a store",
                store=store,
            ) from exc
        raise StoreUnavailable(
            f"store {store!r} failed on {what}: {exc.strerror or exc}", store=store
        ) from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(KeyedStore):
    """Bodies in a directory on this machine."""

    scheme = "file"

    def __init__(self, root: str | os.PathLike[str], *, name: str = "local", fsync: bool = True):
        self._root = Path(root).absolute()
        self._name = check_store_name(name)
        self._fsync = fsync
        self._blobs = self._root / "blobs"
        self._incoming = self._root / "incoming"

    @classmethod
    def from_url(cls, url: str) -> LocalStore:
        parsed = StoreURL.parse(url)
        if parsed.netloc not in ("", "localhost"):
            raise StoreMisconfigured(
                f"{url!r} names host {parsed.netloc!r}; a local store is "
                "file:///absolute/path (three slashes) or file:relative/path"
            )
        if not parsed.path:
            raise StoreMisconfigured(f"{url!r} has no directory; write file:///absolute/path")
        name = parsed.take_name("local")
        fsync = parsed.take_bool("fsync", True)
        parsed.finish(_PARAMS)
        return cls(parsed.path, name=name, fsync=fsync)

    def __repr__(self) -> str:
        return f"LocalStore(name={self._name!r}, root={str(self._root)!r})"

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return _map_errors(self._name, what)

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        with self._errors("its directory"):
            if self._root.exists() and not self._root.is_dir():
                raise StoreMisconfigured(
                    f"store {self._name!r}: {self._root} exists and is not a directory",
                    store=self._name,
                )
            if not self._root.parent.is_dir():
                raise StoreMisconfigured(
                    f"store {self._name!r}: the parent of {self._root} does not exist; "
                    "create it or fix the file:// path",
                    store=self._name,
                )
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._incoming.mkdir(parents=True, exist_ok=True)
            if not os.access(self._root, os.W_OK) or not os.access(self._blobs, os.W_OK):
                raise StoreMisconfigured(
                    f"store {self._name!r}: {self._root} is not writable by this user",
                    store=self._name,
                )
            if self._blobs.stat().st_dev != self._incoming.stat().st_dev:
                raise StoreMisconfigured(
                    f"store {self._name!r}: {self._blobs} and {self._incoming} are on different "
                    "file systems, so uploads could not be renamed into place atomically",
                    store=self._name,
                )

    # -- locators -----------------------------------------------------------------------

    def _path(self, sha256: str) -> Path:
        return self._root / blob_key(sha256)

    # -- operations ---------------------------------------------------------------------

    def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
        digest, chunks = self._hashing(source, sha256)
        with self._errors("upload directory"):
            self._incoming.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=self._incoming, prefix="put-")
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    with self._errors("upload"):
                        out.write(chunk)
                with self._errors("upload"):
                    out.flush()
                    if self._fsync:
                        os.fsync(out.fileno())
            actual = self._hashed(digest, sha256)
            target = self._path(actual)
            with self._errors(f"body {actual}"):
                if not target.parent.is_dir():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if self._fsync:
                        _fsync_dir(self._blobs)
                # Replacing an existing copy is harmless (same content) and refreshes its
                # modification time, which the garbage collector's grace period relies on.
                os.replace(temp, target)
                if self._fsync:
                    _fsync_dir(target.parent)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self._stored(actual, digest.size)

    def _open(self, sha256: str) -> Opened:
        file = self._path(sha256).open("rb")
        return iter(functools.partial(file.read, CHUNK_SIZE), b""), file.close, None

    def head(self, locator: str) -> BlobInfo:
        sha = self._sha256_of(locator)
        with self._errors(f"body {sha}"):
            stat = self._path(sha).stat()
        return BlobInfo(sha, stat.st_size, locator, datetime.fromtimestamp(stat.st_mtime, UTC))

    def delete(self, locator: str) -> None:
        path = self._path(self._sha256_of(locator))
        with self._errors(f"body at {locator}"):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            if self._fsync:
                _fsync_dir(path.parent)

    def list(self) -> Iterator[BlobInfo]:
        with self._errors("blob directory"):
            if not self._blobs.is_dir():
                return
            prefixes = sorted(self._blobs.iterdir())
        for prefix in prefixes:
            with self._errors("blob directory"):
                entries = sorted(prefix.iterdir()) if prefix.is_dir() else []
            for entry in entries:
                sha = sha256_of_key(f"blobs/{prefix.name}/{entry.name}")
                if sha is None:
                    continue
                try:
                    stat = entry.stat()
                except FileNotFoundError:
                    continue  # deleted while listing
                yield BlobInfo(
                    sha,
                    stat.st_size,
                    self.locator(sha),
                    datetime.fromtimestamp(stat.st_mtime, UTC),
                )

    def sweep_partials(self, older_than: datetime) -> int:
        """Remove temporary upload files last written before ``older_than``; return how many."""
        removed = 0
        with self._errors("upload directory"):
            if not self._incoming.is_dir():
                return 0
            for entry in self._incoming.iterdir():
                try:
                    modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                except FileNotFoundError:
                    continue
                if modified < older_than:
                    entry.unlink(missing_ok=True)
                    removed += 1
        return removed

    def close(self) -> None:
        """Nothing to release: files are opened per operation."""
