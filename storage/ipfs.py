"""The IPFS blob store (``ipfs+http://host:port``): a Kubo node through its RPC API.

Only the documented RPC endpoints are used, always with POST (Kubo answers 405 to GET):

- ``/api/v0/add?cid-version=1&raw-leaves=true&pin=true``: the body is streamed as one
  ``multipart/form-data`` file part while its SHA-256 is computed; Kubo answers with
  newline-delimited JSON objects, the last with ``Hash`` (the CID).
- ``/api/v0/pin/add?arg=CID&name=...``: names the pin ``ehrgate sha256=<hex> size=<n>
  stored=<unix time>``, so that ``list`` (for garbage collection) and ``head`` can tell our
  bodies, their SHA-256 and their age from other pins. Named pins need Kubo 0.26 or later.
- ``/api/v0/cat?arg=CID``: streams the body back; the SHA-256 is checked as for every store.
- ``/api/v0/pin/ls``, ``/api/v0/pin/rm`` and ``/api/v0/block/rm``: list bodies; remove
  them (unpin, then drop the root block so the node cannot serve the body any more).
- ``/api/v0/version``: the start-up check.

Errors come back as JSON objects, also in the middle of a stream (``storage._kubo`` maps
them with httpx's own errors). ``cat`` and ``pin`` calls pass ``offline=true`` by default
so a body this node does not hold is "not found" at once instead of being searched for in
the swarm; ``?offline=false`` lets the node fetch from its (private) swarm peers.

Deleting unpins and removes the root block; Kubo frees the other blocks at its next
repository GC, and copies on other nodes remain. That is why bodies are sealed: erasure
deletes the capsules (crypto-shredding).

Locators are ``ipfs://<cid>``: a CID names the content itself, so any IPFS store may serve
it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import httpx

from storage._backend import Backend
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
_PARAMS = ("name", "timeout", "connect_timeout", "offline")
_CID = re.compile(r"(b[a-z2-7]{20,}|Qm[1-9A-HJ-NP-Za-km-z]{44})")
_PIN_NAME = re.compile(r"ehrgate sha256=([0-9a-f]{64}) size=(\d+) stored=(\d+)")
log = logging.getLogger(__name__)
_RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw codec, sha2-256, 32 bytes


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


def raw_cid_sha256(cid: str) -> str | None:
    """The SHA-256 inside a CIDv1 of a single raw block (``bafkrei...``), else None.

    Bodies up to one chunk (256 KiB) added with raw leaves get such a CID; for them the
    node's answer can be checked against our own hash before anything is recorded.
    """
    if not cid.startswith("b"):
        return None
    encoded = cid[1:].upper()
    try:
        raw = base64.b32decode(encoded + "=" * (-len(encoded) % 8))
    except ValueError:
        return None
    if len(raw) != 36 or not raw.startswith(_RAW_SHA256_PREFIX):
        return None
    return raw[4:].hex()


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
        offline: bool = True,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self._api = api_url.rstrip("/")
        self._name = check_store_name(name)
        self._offline = offline
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
        return {"offline": "true"} if self._offline else {}

    # -- checks -------------------------------------------------------------------------

    def check(self) -> None:
        with self._errors("a version check"):
            answer = self._kubo.call("version")
        if not isinstance(answer.get("Version"), str):
            raise StoreMisconfigured(
                f"store {self._name!r}: {self._api}/api/v0/version did not report a Kubo "
                "version; check that the URL points at the Kubo RPC API (port 5001)",
                store=self._name,
            )

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
        if scheme != SCHEME or path or not _CID.fullmatch(authority):
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
        cid = self._add(chunks)
        try:
            actual = self._hashed(digest, sha256)
            inner = raw_cid_sha256(cid)
            if inner is not None and inner != actual:
                raise IntegrityError(
                    f"store {self._name!r} answered CID {cid} for a body whose SHA-256 is "
                    f"{actual}: the node did not store what was sent",
                    store=self._name,
                )
            with self._errors(f"naming the pin of {cid}"):
                self._kubo.call(
                    "pin/add",
                    arg=cid,
                    name=pin_name(actual, digest.size, datetime.now(UTC)),
                    **self._flags(),
                )
        except BaseException:
            # The body was pinned by add; leave nothing behind that list() cannot see.
            with contextlib.suppress(StorageError), self._errors(f"unpinning {cid}"):
                self._kubo.call("pin/rm", arg=cid)
            raise
        return StoredBlob(sha256=actual, size=digest.size, locators=(self.locator(cid),))

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

        params = {"cid-version": "1", "raw-leaves": "true", "pin": "true", "progress": "false"}
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        with self._errors("upload"):
            items = self._kubo.lines("add", params, content=multipart(), headers=headers)
        names = [item["Hash"] for item in items if isinstance(item.get("Hash"), str)]
        if not names or not _CID.fullmatch(names[-1]):
            raise StoreUnavailable(
                f"store {self._name!r}: Kubo's answer to add named no CID", store=self._name
            )
        cid: str = names[-1]
        return cid

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
        with self._errors(f"body {cid}"):
            response = self._kubo.open("cat", {"arg": cid, **self._flags()})
        chunks = (chunk for chunk in response.iter_bytes() if chunk)
        return self._body(
            chunks, response.close, sha256=sha256, size=size, where=f"{sha256} ({cid})"
        )

    def head(self, locator: str) -> BlobInfo:
        cid = self._require_cid(locator)
        with self._errors(f"body {cid}"):
            answer = self._kubo.call(
                "pin/ls", arg=cid, type="recursive", names="true", **self._flags()
            )
        keys = answer.get("Keys")
        entry = keys.get(cid) if isinstance(keys, dict) else None
        parsed = parse_pin_name(entry.get("Name") if isinstance(entry, dict) else None)
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
            self._kubo.call("pin/rm", arg=cid)
        # Unpinning alone leaves the blocks readable until Kubo's next repository GC;
        # removing the root block makes the body unreadable from this node at once.
        # Failures per block (e.g. still pinned through another pin) come back as "Error"
        # fields and are not ours to override.
        with self._errors(f"removal of {cid}"):
            items = self._kubo.lines("block/rm", {"arg": cid, "force": "true"})
        for item in items:
            if item.get("Error"):
                log.info("Kubo kept block %s: %s", item.get("Hash"), item["Error"])

    def list(self) -> Iterator[BlobInfo]:
        params = {"type": "recursive", "names": "true", "stream": "true"}
        with self._errors("listing of pins"):
            items = self._kubo.lines("pin/ls", params)
        for item in items:
            parsed = parse_pin_name(item.get("Name"))
            cid = item.get("Cid")
            if parsed is None or not isinstance(cid, str):
                continue
            sha, size, stored = parsed
            yield BlobInfo(sha, size, self.locator(cid), stored)

    def close(self) -> None:
        self._kubo.close()
