"""An in-memory stand-in for a Kubo node's RPC API, as an ``httpx.MockTransport`` handler.

It follows the RPC contract the IPFS store relies on, as documented for Kubo:

- every endpoint is under ``/api/v0/`` and answers only POST (405 otherwise); an unknown
  endpoint is 404 with a plain-text body;
- errors are HTTP 500 with ``{"Message": ..., "Code": 0, "Type": "error"}`` (400 for a
  malformed call such as a missing argument);
- every command takes ``timeout`` (a duration) and the CID-printing ones ``cid-base``; the
  mock accepts them (its CIDs are base32 already);
- ``add`` takes ``multipart/form-data`` with one file part and answers newline-delimited
  JSON (progress objects ``{"Name": "", "Bytes": n}`` when ``progress=true``, then
  ``{"Name", "Hash", "Size"}``), with ``X-Chunked-Output: 1``;
- CIDs are CIDv1 in base32. A body of one chunk (256 KiB or less) added with raw leaves
  gets the real CID Kubo gives it (``bafkrei...``: raw codec, sha2-256 of the body); a
  larger body gets a deterministic dag-pb CID (``bafybei...``) over its chunks' CIDs, which
  has the right form but is not the byte-exact UnixFS root Kubo would compute;
- ``cat`` with ``offline=true`` reports a missing block as Kubo does; pins have names
  (``pin/add?name=``, ``pin/ls?names=true``), ``pin/rm`` of an unpinned CID fails;
  unpinning leaves the blocks readable, ``block/rm`` removes them unless pinned (per-block
  errors as ``{"Hash", "Error"}`` lines).

Faults can be injected: ``down`` (connection refused), ``fail_next`` (an error answer),
``corrupt`` (flip a byte of a stored body), ``lie_about_cids`` (answer a wrong CID).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP

import httpx

CHUNK = 256 * 1024
VERSION = {
    "Version": "0.38.1",
    "Commit": "",
    "Repo": "17",
    "System": "amd64/linux",
    "Golang": "go1.24.6",
}
_ENDPOINTS = {"add", "cat", "version", "pin/add", "pin/rm", "pin/ls", "block/rm"}
_ADD_OPTIONS = {
    "cid-base",
    "timeout",
    "cid-version",
    "raw-leaves",
    "pin",
    "progress",
    "quiet",
    "quieter",
    "chunker",
    "pin-name",
}


def _cid(codec: int, digest: bytes) -> str:
    raw = bytes([0x01, codec, 0x12, 0x20]) + digest
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def cid_of(body: bytes) -> str:
    """The CIDv1 Kubo would give ``body`` with raw leaves (exact for a single chunk)."""
    if len(body) <= CHUNK:
        return _cid(0x55, hashlib.sha256(body).digest())
    leaves = [
        _cid(0x55, hashlib.sha256(body[i : i + CHUNK]).digest()) for i in range(0, len(body), CHUNK)
    ]
    return _cid(0x70, hashlib.sha256(",".join(leaves).encode()).digest())


def _error(message: str, status: int = 500) -> httpx.Response:
    return httpx.Response(
        status,
        json={"Message": message, "Code": 0, "Type": "error"},
        headers={"Content-Type": "application/json"},
    )


@dataclass
class KuboMock:
    """The node's state (blocks and named pins) and the request handler."""

    blocks: dict[str, bytes] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)  # CID -> pin name
    down: bool = False
    lie_about_cids: bool = False
    requests: list[httpx.Request] = field(default_factory=list)
    _failures: dict[str, httpx.Response] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail_next(self, endpoint: str, message: str, status: int = 500) -> None:
        """Answer the next call of ``endpoint`` (e.g. ``"add"``) with a Kubo error."""
        self._failures[endpoint] = _error(message, status)

    def corrupt(self, cid: str) -> None:
        body = bytearray(self.blocks[cid])
        body[len(body) // 2] ^= 0x01
        self.blocks[cid] = bytes(body)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        self.requests.append(request)
        path = request.url.path
        if not path.startswith("/api/v0/"):
            return httpx.Response(404, text="404 page not found")
        endpoint = path.removeprefix("/api/v0/")
        if endpoint not in _ENDPOINTS:
            return httpx.Response(404, text="404 page not found")
        if request.method != "POST":
            return httpx.Response(405, text="405 - Method Not Allowed")
        if endpoint in self._failures:
            return self._failures.pop(endpoint)
        params = request.url.params
        if endpoint == "version":
            return httpx.Response(200, json=VERSION)
        if endpoint == "add":
            return self._add(request)
        if endpoint == "cat":
            return self._cat(params)
        if endpoint == "pin/add":
            return self._pin_add(params)
        if endpoint == "pin/rm":
            return self._pin_rm(params)
        if endpoint == "block/rm":
            return self._block_rm(params)
        return self._pin_ls(params)

    def _add(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        unknown = set(params) - _ADD_OPTIONS
        if unknown:
            return _error(f'unrecognized option "{sorted(unknown)[0]}"', 400)
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return _error("file argument 'path' is required", 400)
        raw = request.read()
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
        )
        files = [
            part
            for part in message.iter_parts()
            if part.get_param("filename", header="content-disposition") is not None
        ]
        if len(files) != 1:
            return _error("file argument 'path' is required", 400)
        part = files[0]
        body = part.get_payload(decode=True)
        assert isinstance(body, bytes)
        if params.get("cid-version") != "1" or params.get("raw-leaves") != "true":
            # Our mock only models CIDv1 with raw leaves, as the store uses.
            return _error("mock supports only cid-version=1 with raw-leaves=true", 400)
        cid = cid_of(body)
        if self.lie_about_cids:
            cid = cid_of(body + b"!")
        self.blocks[cid] = body
        if params.get("pin", "true") == "true":
            self.pins.setdefault(cid, "")
        lines = []
        if params.get("progress") == "true":
            for done in range(CHUNK, len(body), CHUNK):
                lines.append({"Name": "", "Bytes": done})
            lines.append({"Name": "", "Bytes": len(body)})
        name = part.get_param("filename", header="content-disposition")
        lines.append({"Name": str(name), "Hash": cid, "Size": str(len(body) + 11)})
        text = "".join(json.dumps(line) + "\n" for line in lines)
        return httpx.Response(
            200,
            content=text.encode(),
            headers={
                "Content-Type": "application/json",
                "X-Chunked-Output": "1",
                "Trailer": "X-Stream-Error",
            },
        )

    def _cat(self, params: httpx.QueryParams) -> httpx.Response:
        cid = params.get("arg")
        if not cid:
            return _error('argument "ipfs-path" is required', 400)
        if not cid.startswith(("b", "Qm")):
            return _error(f'invalid path "{cid}": invalid cid: selected encoding not supported')
        if cid not in self.blocks:
            if params.get("offline") == "true":
                return _error(f"block was not found locally (offline): ipld: could not find {cid}")
            return _error("context deadline exceeded")
        return httpx.Response(
            200,
            content=self.blocks[cid],
            headers={"Content-Type": "text/plain", "X-Stream-Output": "1"},
        )

    def _pin_add(self, params: httpx.QueryParams) -> httpx.Response:
        cid = params.get("arg")
        if not cid:
            return _error('argument "ipfs-path" is required', 400)
        if cid not in self.blocks:
            return _error(f"pin: block was not found locally (offline): ipld: could not find {cid}")
        self.pins[cid] = params.get("name", "")
        return httpx.Response(200, json={"Pins": [cid]})

    def _pin_rm(self, params: httpx.QueryParams) -> httpx.Response:
        cid = params.get("arg")
        if not cid:
            return _error('argument "ipfs-path" is required', 400)
        if cid not in self.pins:
            return _error("not pinned or pinned indirectly")
        del self.pins[cid]
        return httpx.Response(200, json={"Pins": [cid]})

    def _block_rm(self, params: httpx.QueryParams) -> httpx.Response:
        lines = []
        for cid in params.get_list("arg"):
            if cid in self.pins:
                lines.append({"Hash": cid, "Error": "pinned: recursive"})
            elif cid in self.blocks:
                del self.blocks[cid]
                lines.append({"Hash": cid})
            elif params.get("force") != "true":
                lines.append({"Hash": cid, "Error": "ipld: could not find " + cid})
        text = "".join(json.dumps(line) + "\n" for line in lines)
        return httpx.Response(
            200, content=text.encode(), headers={"Content-Type": "application/json"}
        )

    def _pin_ls(self, params: httpx.QueryParams) -> httpx.Response:
        names = params.get("names") == "true"
        cid = params.get("arg")
        if cid is not None:
            if cid not in self.pins:
                return _error(f"path '{cid}' is not pinned")
            selected = {cid: self.pins[cid]}
        else:
            selected = dict(self.pins)

        def entry(name: str) -> dict[str, str]:
            return {"Type": "recursive", "Name": name} if names else {"Type": "recursive"}

        if params.get("stream") == "true":
            text = "".join(
                json.dumps({"Cid": key, **entry(name)}) + "\n" for key, name in selected.items()
            )
            return httpx.Response(
                200, content=text.encode(), headers={"Content-Type": "application/json"}
            )
        return httpx.Response(
            200, json={"Keys": {key: entry(name) for key, name in selected.items()}}
        )
