"""RFC 8785 (JCS) canonical JSON and the base64 forms used in every signed object."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import rfc8785

from envelope.errors import EnvelopeError


def canonical_json(value: Any) -> bytes:
    """Encode *value* as RFC 8785 canonical JSON (UTF-8, sorted keys, no whitespace)."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"cannot encode as canonical JSON: {exc}") from exc


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Strict standard base64; *length*, when given, is the exact decoded length required.

    Only the canonical encoding is accepted (padding present, unused low bits zero), so
    that one value has one text form and a changed character is never silently ignored.
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, AttributeError) as exc:
        raise EnvelopeError(f"{what} is not valid base64") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise EnvelopeError(f"{what} is not canonical base64")
    if length is not None and len(data) != length:
        raise EnvelopeError(f"{what} must be {length} bytes, got {len(data)}")
    return data
