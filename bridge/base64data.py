"""Base64 as the bridge's front doors carry PDFs: FHIR `attachment.data` and `Binary.data`,
HL7 v2 OBX-5.

Strict RFC 4648: the standard alphabet, padding only at the end and only as much as the
last quantum needs, no whitespace or line breaks. pybase64 decodes it with the CPU's
vector instructions, some twenty times as fast as `binascii` on a 1 MiB PDF (it falls back
to its own portable C where those are missing).
"""

from __future__ import annotations

import pybase64


def strict_b64decode(data: str | bytes | memoryview) -> bytes:
    """The bytes *data* encodes; `ValueError` (a `binascii.Error`) if it is not strict
    base64, non-ASCII text included."""
    return pybase64.b64decode(data, validate=True)


def b64encode_text(data: bytes) -> str:
    """*data* in base64, as text."""
    return pybase64.b64encode_as_string(data)
