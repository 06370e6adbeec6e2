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
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from storage._config import StoreURL, check_store_name
from storage._keyed import KeyedLocators
from storage._streams import (
    CHUNK_SIZE,
    BodyStream,
    Digest,
    blob_key,
    check_put_digest,
    check_sha256,
    iter_source,
    sha256_of_key,
    verified,
)
from storage.errors import (
    BlobNotFound,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
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


class LocalStore(KeyedLocators):
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

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"LocalStore(name={self._name!r}, root={str(self._root)!r})"

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        with _map_errors(self._name, "its directory"):
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
        if sha256 is not None:
            check_sha256(sha256)
        with _map_errors(self._name, "upload directory"):
            self._incoming.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=self._incoming, prefix="put-")
        temp = Path(temp_name)
        digest = Digest()
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter_source(source):
                    with _map_errors(self._name, "upload"):
                        out.write(digest.update(chunk))
                with _map_errors(self._name, "upload"):
                    out.flush()
                    if self._fsync:
                        os.fsync(out.fileno())
            actual = check_put_digest(digest, sha256, self._name)
            target = self._path(actual)
            with _map_errors(self._name, f"body {actual}"):
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
        return StoredBlob(sha256=actual, size=digest.size, locators=(self.locator(actual),))

    def get(
        self, locators: Sequence[str], *, sha256: str, size: int | None = None
    ) -> Iterator[bytes]:
        check_sha256(sha256)
        # Opened now, so that a missing body raises here rather than mid-response.
        with _map_errors(self._name, f"body {sha256}"):
            file = self._path(sha256).open("rb")
        chunks = verified(
            self._read(file, sha256), sha256=sha256, size=size, store=self._name, where=sha256
        )
        return BodyStream(chunks, file.close)

    def _read(self, file: BinaryIO, sha256: str) -> Iterator[bytes]:
        while True:
            with _map_errors(self._name, f"body {sha256}"):
                chunk = file.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

    def head(self, locator: str) -> BlobInfo:
        sha = self._sha256_of(locator)
        with _map_errors(self._name, f"body {sha}"):
            stat = self._path(sha).stat()
        return BlobInfo(sha, stat.st_size, locator, datetime.fromtimestamp(stat.st_mtime, UTC))

    def delete(self, locator: str) -> None:
        path = self._path(self._sha256_of(locator))
        with _map_errors(self._name, f"body at {locator}"):
            try:
                path.unlink()
            except FileNotFoundError:
                return
            if self._fsync:
                _fsync_dir(path.parent)

    def list(self) -> Iterator[BlobInfo]:
        with _map_errors(self._name, "blob directory"):
            if not self._blobs.is_dir():
                return
            prefixes = sorted(self._blobs.iterdir())
        for prefix in prefixes:
            with _map_errors(self._name, "blob directory"):
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
        with _map_errors(self._name, "upload directory"):
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
