"""Canonical JSON for ledger objects: RFC 8785 output, fast for the shapes the ledger uses.

Transactions hold only objects with ASCII keys, strings, booleans, null and integers within
±(2**53 - 1). For such values Python's `json.dumps` with sorted keys and no whitespace
produces exactly the RFC 8785 form (same escapes, same key order, same integers), at a
fraction of the cost of a general JCS encoder. Anything else (floats, non-ASCII keys, huge
integers) goes through `envelope.canonical_json`, which is the reference.
"""

from __future__ import annotations

import json
from typing import Any

from envelope import canonical_json

_MAX_SAFE_INT = 2**53 - 1
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode


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
            return _dumps(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the reference encoder report it
    return canonical_json(value)
