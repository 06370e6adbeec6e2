"""Canonical JSON for ledger objects: RFC 8785 output, fast for the shapes the ledger uses.

Transactions hold only objects with ASCII keys, strings, booleans, null and integers within
±(2**53 - 1). For such values orjson with sorted keys produces exactly the RFC 8785 form
(UTF-8 text; short escapes for backspace, tab, newline, form feed, return, quote and
backslash, lowercase \\u00xx for the other controls; the same key order for ASCII keys; the
same integers), at a fraction of the cost of a general JCS encoder. Anything else (floats,
non-ASCII keys, huge integers, lone surrogates) goes through `envelope.canonical_json`, the
reference.

`parse_canonical` is the other direction for bytes that should already be canonical (a
signed transaction as a client sent it, an entry read back from the log): it parses them
with orjson and re-encodes with orjson, whose output for the same restricted values is
again exactly RFC 8785 (tests/ledger/test_encoding.py checks both against the reference).
"""

from __future__ import annotations

from typing import Any

import orjson

from envelope import canonical_json

_MAX_SAFE_INT = 2**53 - 1


def _fast_path_applies(value: Any) -> bool:
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() for k in value) and all(
            _fast_path_applies(v) for v in value.values()
        )
    if isinstance(value, list | tuple):
        return all(_fast_path_applies(v) for v in value)
    return False


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON of *value* (UTF-8 bytes)."""
    if _fast_path_applies(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate: let the reference encoder report it
    return canonical_json(value)


def parse_canonical(encoded: bytes) -> Any | None:
    """The JSON value *encoded* holds, if those bytes are its RFC 8785 form; else None.

    None also for everything outside the fast path (invalid JSON, floats, non-ASCII keys,
    integers beyond ±(2**53 - 1), lone surrogates): the caller then takes the reference
    path, which says precisely what is wrong, or accepts what only it can check. A value is
    returned only when re-encoding it gives *encoded* byte for byte.
    """
    try:
        value = orjson.loads(encoded)
    except orjson.JSONDecodeError:
        return None
    if not _fast_path_applies(value):
        return None
    if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != encoded:
        return None
    return value
