"""CIDs as the IPFS store writes them into locators: CIDv1 in base32 (``b...``).

Nodes differ in how they print a CID: Kubo answers base32 for CIDv1, js-ipfs base58btc
(``z...``) unless asked for ``cid-base=base32``. The store asks for base32 and also
converts any base58btc CIDv1 it reads, so a locator never depends on the node that wrote
it. CIDv0 (``Qm...``) has only one form and is kept as it is.
"""

from __future__ import annotations

import base64
import re

__all__ = ["CID", "normalise_cid", "raw_cid_of_sha256", "raw_cid_sha256"]

_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: value for value, char in enumerate(_BASE58)}
#: A CID in one of the forms a node answers: CIDv1 base32 or base58btc, or CIDv0.
CID = re.compile(r"(b[a-z2-7]{20,}|z[1-9A-HJ-NP-Za-km-z]{20,}|Qm[1-9A-HJ-NP-Za-km-z]{44})")
_RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw codec, sha2-256, 32 bytes


def _base58_decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _BASE58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def _base32(raw: bytes) -> str:
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def normalise_cid(cid: str) -> str:
    """``cid`` in the form locators use: a base58btc CIDv1 becomes base32; others unchanged.

    Raises ValueError for text that is not a CID in a known form.
    """
    if not CID.fullmatch(cid):
        raise ValueError(f"{cid!r} is not a CID")
    if cid.startswith("z"):
        return _base32(_base58_decode(cid[1:]))
    return cid


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


def raw_cid_of_sha256(sha256: str) -> str:
    """The CIDv1 (raw codec, base32) of a single raw block whose SHA-256 is *sha256*: the
    CID a node gives a blob of at most one chunk added with raw leaves."""
    return _base32(_RAW_SHA256_PREFIX + bytes.fromhex(sha256))
