"""The IPFS blob store (``ipfs+http://host:port``): a Kubo node through its RPC API.

Only the documented RPC endpoints are used, always with POST (Kubo answers 405 to GET).
The same calls work against js-ipfs (npm ``ipfs`` 0.66), the node the tests run; where the
two differ the store is tolerant (see "Kubo and js-ipfs" below).

- ``/api/v0/add?cid-version=1&raw-leaves=true&pin=true``: the body is streamed as one
  ``multipart/form-data`` file part while its SHA-256 is computed; Kubo answers with
  newline-delimited JSON objects, the last with ``Hash`` (the CID).
- ``/api/v0/pin/add?arg=CID&name=...``: names the pin ``ehrgate sha256=<hex> size=<n>
  stored=<unix time>``, so that ``list`` (for garbage collection) and ``head`` can tell our
  bodies, their SHA-256 and their age from other pins. Named pins need Kubo 0.26 or later;
  js-ipfs keeps the name as pin metadata (``metadata={"name": ...}``, ``Metadata``).
- ``/api/v0/cat?arg=CID``: streams the body back; the SHA-256 is checked as for every store.
- ``/api/v0/pin/ls``, ``/api/v0/pin/rm`` and ``/api/v0/block/rm``: list bodies; remove
  them (unpin, then drop the root block so the node cannot serve the body any more).
- ``/api/v0/version``: the start-up check.

Errors come back as JSON objects, also in the middle of a stream (``storage._kubo`` maps
them with httpx's own errors). ``cat`` and ``pin`` calls pass ``offline=true`` by default
so a body this node does not hold is "not found" at once instead of being searched for in
the swarm; ``?offline=false`` lets the node fetch from its (private) swarm peers.

Kubo and js-ipfs: js-ipfs ignores ``offline`` and waits for an unknown CID for ever, so
every call carries the node-side ``timeout=`` (``node_timeout``) and, offline, ``get``
first asks ``pin/ls`` whether the body is pinned here (our bodies always are); CIDs are
requested with ``cid-base=base32`` and any base58btc CIDv1 in an answer is converted
(``storage._cid``), so locators are the same whichever node wrote them; the node kind is
told by its ``version`` answer (js-ipfs adds ``ipfs-core``), once. js-ipfs's ``add``
re-pins existing content without its metadata, so there ``add`` does not pin
(``pin=false``) and only ``pin/add`` does. A failing source never cuts ``add`` off (see
``_until_failure``), and a failed ``put`` never unpins a body an earlier ``put`` named.

Deleting unpins and removes the root block; Kubo frees the other blocks at its next
repository GC, and copies on other nodes remain. That is why bodies are sealed: erasure
deletes the capsules (crypto-shredding).

Locators are ``ipfs://<cid>``: a CID names the content itself, so any IPFS store may serve
it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx

from storage._backend import Backend
from storage._cid import CID, normalise_cid, raw_cid_sha256
from storage._config import StoreURL, check_store_name, redact, split_locator
from storage._kubo import Kubo, KuboError, map_errors
from storage._streams import check_sha256
from storage.errors import (
    BlobNotFound,
    IntegrityError,
    InvalidLocator,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)
from storage.types import BlobInfo, Source, StoredBlob

__all__ = [
    "PIN_PREFIX",
    "SCHEME",
    "IpfsStore",
    "KuboError",
    "parse_pin_name",
    "pin_name",
    "raw_cid_sha256",
]

SCHEME = "ipfs"
PIN_PREFIX = "ehrgate "
_PARAMS = ("name", "timeout", "connect_timeout", "node_timeout", "offline")
_PIN_NAME = re.compile(r"ehrgate sha256=([0-9a-f]{64}) size=(\d+) stored=(\d+)")
log = logging.getLogger(__name__)
_BASE32 = {"cid-base": "base32"}


def pin_name(sha256: str, size: int, stored: datetime) -> str:
    return f"{PIN_PREFIX}sha256={sha256} size={size} stored={int(stored.timestamp())}"


def parse_pin_name(name: object) -> tuple[str, int, datetime] | None:
    """(sha256, size, stored) from one of our pin names, or None for any other pin."""
    if not isinstance(name, str):
        return None
    match = _PIN_NAME.fullmatch(name)
    if not match:
        return None
    return (
        match.group(1),
        int(match.group(2)),
        datetime.fromtimestamp(int(match.group(3)), UTC),
    )


def pin_label(entry: object) -> object:
    """The name of a pin as either node reports it: Kubo's ``Name``, js-ipfs's
    ``Metadata.name``."""
    if not isinstance(entry, dict):
        return None
    metadata = entry.get("Metadata")
    if isinstance(metadata, dict) and "name" in metadata:
        return metadata["name"]
    return entry.get("Name")


class IpfsStore(Backend):
    """Bodies pinned on one Kubo node."""

    def __init__(
        self,
        api_url: str,
        *,
        name: str = "ipfs",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        node_timeout: float = 600.0,
        offline: bool = True,
        auth: tuple[str, str] | None = None,
    ) -> None:
        if node_timeout <= 0:
            raise StoreMisconfigured(f"store {name!r}: node_timeout must be a positive number")
        self._api = api_url.rstrip("/")
        self._name = check_store_name(name)
        self._offline = offline
        self._deadline = {"timeout": f"{node_timeout:g}s"}
        self._js_ipfs: bool | None = None
        self._kubo = Kubo(
            self._api,
            transport=transport,
            timeout=timeout,
            connect_timeout=connect_timeout,
            auth=auth,
        )

    @classmethod
    def from_url(cls, url: str, *, transport: httpx.BaseTransport | None = None) -> IpfsStore:
        parsed = StoreURL.parse(url)
        if parsed.scheme not in ("ipfs+http", "ipfs+https"):
            raise StoreMisconfigured(f"{redact(url)} is not an ipfs+http:// or ipfs+https:// URL")
        if not parsed.hostname:
            raise StoreMisconfigured(
                f"{redact(url)} has no host; write ipfs+http://HOST:5001 (the Kubo RPC port)"
            )
        if parsed.path not in ("", "/"):
            raise StoreMisconfigured(
                f"{redact(url)}: give only host and port; /api/v0 is added by ehrgate"
            )
        http_scheme = parsed.scheme.removeprefix("ipfs+")
        host = parsed.hostname if ":" not in parsed.hostname else f"[{parsed.hostname}]"
        port = f":{parsed.port}" if parsed.port else ""
        auth = (parsed.username or "", parsed.password or "") if parsed.username else None
        store = cls(
            f"{http_scheme}://{host}{port}",
            name=parsed.take_name("ipfs"),
            transport=transport,
            timeout=parsed.take_float("timeout", 60.0),
            connect_timeout=parsed.take_float("connect_timeout", 5.0),
            node_timeout=parsed.take_float("node_timeout", 600.0),
            offline=parsed.take_bool("offline", True),
            auth=auth,
        )
        parsed.finish(_PARAMS)
        return store

    def __repr__(self) -> str:
        return f"IpfsStore(name={self._name!r}, api={self._api!r})"

    def _errors(self, what: str) -> contextlib.AbstractContextManager[None]:
        return map_errors(self._name, self._api, what)

    def _flags(self) -> dict[str, str]:
        """Options of every call about a CID: the node-side deadline, and offline."""
        offline = {"offline": "true"} if self._offline else {}
        return {**self._deadline, **offline}

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        self._is_js_ipfs(refresh=True)

    def _is_js_ipfs(self, *, refresh: bool = False) -> bool:
        """Whether the node is js-ipfs (its ``version`` answer names ``ipfs-core``); asked
        once, by ``check`` or the first pin."""
        if self._js_ipfs is None or refresh:
            with self._errors("a version check"):
                answer = self._kubo.call("version")
            if not isinstance(answer.get("Version"), str):
                raise StoreMisconfigured(
                    f"store {self._name!r}: {self._api}/api/v0/version did not report a Kubo "
                    "version; check that the URL points at the Kubo RPC API (port 5001)",
                    store=self._name,
                )
            self._js_ipfs = "ipfs-core" in answer
        return self._js_ipfs

    def _label(self, name: str) -> dict[str, str]:
        """The pin/add option that names a pin on this node."""
        if self._is_js_ipfs():
            return {"metadata": json.dumps({"name": name})}
        return {"name": name}

    # -- locators -----------------------------------------------------------------------

    @staticmethod
    def locator(cid: str) -> str:
        return f"{SCHEME}://{cid}"

    def owns(self, locator: str) -> bool:
        return self._cid_of(locator) is not None

    @staticmethod
    def _cid_of(locator: str) -> str | None:
        try:
            scheme, authority, path = split_locator(locator)
        except InvalidLocator:
            return None
        if scheme != SCHEME or path or not CID.fullmatch(authority):
            return None
        return authority

    def _require_cid(self, locator: str) -> str:
        cid = self._cid_of(locator)
        if cid is None:
            raise InvalidLocator(
                f"locator {locator!r} is not an ipfs://CID locator", store=self._name
            )
        return cid

    # -- put ----------------------------------------------------------------------------

    def put(self, source: Source, *, sha256: str | None = None) -> StoredBlob:
        digest, chunks = self._hashing(source, sha256)
        # A source that fails at once (wrong type, unreadable) fails before any request.
        first = next(chunks, None)
        failures: list[Exception] = []
        cid = self._add(_until_failure(itertools.chain([first] if first else [], chunks), failures))
        try:
            if failures:
                raise failures[0]
            actual = self._hashed(digest, sha256)
            inner = raw_cid_sha256(cid)
            if inner is not None and inner != actual:
                raise IntegrityError(
                    f"store {self._name!r} answered CID {cid} for a body whose SHA-256 is "
                    f"{actual}: the node did not store what was sent",
                    store=self._name,
                )
            label = self._label(pin_name(actual, digest.size, datetime.now(UTC)))
            with self._errors(f"naming the pin of {cid}"):
                self._kubo.call("pin/add", arg=cid, **label, **_BASE32, **self._flags())
        except BaseException:
            self._undo_add(cid)
            raise
        return StoredBlob(sha256=actual, size=digest.size, locators=(self.locator(cid),))

    def _undo_add(self, cid: str) -> None:
        """After a failed put: unpin what add pinned, leaving nothing list() cannot see;
        but a body an earlier put completed (its pin carries our name) stays."""
        with contextlib.suppress(StorageError):
            if parse_pin_name(pin_label(self._pin_entry(cid))) is not None:
                return
        with contextlib.suppress(StorageError), self._errors(f"unpinning {cid}"):
            self._kubo.call("pin/rm", arg=cid, **self._deadline)

    def _add(self, chunks: Iterator[bytes]) -> str:
        """Stream ``chunks`` to ``add`` as one multipart/form-data file; the CID Kubo names."""
        boundary = uuid.uuid4().hex

        def multipart() -> Iterator[bytes]:
            yield (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="body"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            yield from chunks
            yield f"\r\n--{boundary}--\r\n".encode()

        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            # js-ipfs re-pins an existing body without its metadata, dropping our name
            # until pin/add names it again; there only pin/add pins.
            "pin": "false" if self._is_js_ipfs() else "true",
            "progress": "false",
            **_BASE32,
            **self._deadline,
        }
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._errors("upload"):
            items = self._kubo.lines("add", params, content=multipart(), headers=headers)
        names = [item["Hash"] for item in items if isinstance(item.get("Hash"), str)]
        if not names or not CID.fullmatch(names[-1]):
            raise StoreUnavailable(
                f"store {self._name!r}: Kubo's answer to add named no CID", store=self._name
            )
        return normalise_cid(names[-1])

    # -- get, head, delete, list -------------------------------------------------------

    def get(
        self, locators: Sequence[str], *, sha256: str, size: int | None = None
    ) -> Iterator[bytes]:
        check_sha256(sha256)
        cids = list(dict.fromkeys(c for c in map(self._cid_of, locators) if c is not None))
        if not cids:
            raise BlobNotFound(
                f"store {self._name!r}: none of the locators of {sha256} is an ipfs:// CID",
                store=self._name,
            )
        last: StorageError | None = None
        for cid in cids:
            try:
                return self._cat(cid, sha256, size)
            except BlobNotFound as exc:
                last = exc
        assert last is not None
        raise last

    def _cat(self, cid: str, sha256: str, size: int | None) -> Iterator[bytes]:
        if self._offline:
            # Offline, a body is here only if pinned here (every put pins); asking first
            # answers "not found" at once where js-ipfs would wait for the CID until
            # node_timeout.
            self._pin_entry(cid)
        with self._errors(f"body {cid}"):
            response = self._kubo.open("cat", {"arg": cid, **self._flags()})
        chunks = (chunk for chunk in response.iter_bytes() if chunk)
        return self._body(
            chunks, response.close, sha256=sha256, size=size, where=f"{sha256} ({cid})"
        )

    def _pin_entry(self, cid: str) -> object:
        """The node's ``pin/ls`` entry of ``cid`` (BlobNotFound if it is not pinned)."""
        with self._errors(f"body {cid}"):
            answer = self._kubo.call(
                "pin/ls", arg=cid, type="recursive", names="true", **_BASE32, **self._flags()
            )
        keys = answer.get("Keys")
        wanted = _normalised(cid)
        for key, entry in keys.items() if isinstance(keys, dict) else ():
            if _normalised(key) == wanted:
                return entry
        raise BlobNotFound(f"store {self._name!r} has no body {cid}", store=self._name)

    def head(self, locator: str) -> BlobInfo:
        cid = self._require_cid(locator)
        parsed = parse_pin_name(pin_label(self._pin_entry(cid)))
        if parsed is None:
            raise BlobNotFound(
                f"store {self._name!r}: {cid} is pinned, but not as an ehrgate body",
                store=self._name,
            )
        sha, size, stored = parsed
        return BlobInfo(sha, size, locator, stored)

    def delete(self, locator: str) -> None:
        cid = self._require_cid(locator)
        with contextlib.suppress(BlobNotFound), self._errors(f"body {cid}"):
            self._kubo.call("pin/rm", arg=cid, **self._deadline)
        # Unpinning alone leaves the blocks readable until Kubo's next repository GC;
        # removing the root block makes the body unreadable from this node at once.
        # Failures per block (e.g. still pinned through another pin) come back as "Error"
        # fields and are not ours to override.
        with self._errors(f"removal of {cid}"):
            items = self._kubo.lines("block/rm", {"arg": cid, "force": "true", **self._deadline})
        for item in items:
            if item.get("Error"):
                log.info("Kubo kept block %s: %s", item.get("Hash"), item["Error"])

    def list(self) -> Iterator[BlobInfo]:
        params = {"type": "recursive", "names": "true", "stream": "true", **_BASE32}
        with self._errors("listing of pins"):
            items = self._kubo.lines("pin/ls", {**params, **self._deadline})
        for item in items:
            parsed = parse_pin_name(pin_label(item))
            cid = item.get("Cid")
            if parsed is None or not isinstance(cid, str) or not CID.fullmatch(cid):
                continue
            sha, size, stored = parsed
            yield BlobInfo(sha, size, self.locator(normalise_cid(cid)), stored)

    def close(self) -> None:
        self._kubo.close()


def _normalised(cid: str) -> str:
    return normalise_cid(cid) if CID.fullmatch(cid) else cid


def _until_failure(chunks: Iterator[bytes], failures: list[Exception]) -> Iterator[bytes]:
    """``chunks`` until the source fails; its error is kept in ``failures`` for ``put`` to
    raise once the node has answered.

    The add request is never cut off half-way: js-ipfs 0.66 keeps its repository lock for
    an add whose request broke, and every later ``block/rm`` then waits for ever. The
    multipart body is closed cleanly instead, and the partial body unpinned.
    """
    try:
        yield from chunks
    except Exception as exc:
        failures.append(exc)
