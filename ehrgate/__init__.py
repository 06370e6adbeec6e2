"""The ehrgate client: the `Client` SDK, its exceptions and results, and the command line.

Names are imported on first use, so that `ehrgate keys ...` and other offline commands
start without loading the HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ehrgate._http import RetryPolicy
    from ehrgate.client import Client
    from ehrgate.errors import (
        AuthenticationFailed,
        Conflict,
        Denied,
        EhrgateError,
        IntegrityFailure,
        InvalidRequest,
        NotFound,
        RateLimited,
        RecordExists,
        RuleViolation,
        Suspended,
        Unavailable,
        UsageError,
        VerificationFailed,
    )
    from ehrgate.models import (
        AccessEvent,
        AccessRequest,
        Fetched,
        Identity,
        LedgerHead,
        Patient,
        Permission,
        Receipt,
        Record,
        RecordProof,
        TreeHead,
        Uploaded,
    )
    from ehrgate.trust import LedgerPins

__all__ = [
    "AccessEvent",
    "AccessRequest",
    "AuthenticationFailed",
    "Client",
    "Conflict",
    "Denied",
    "EhrgateError",
    "Fetched",
    "Identity",
    "IntegrityFailure",
    "InvalidRequest",
    "LedgerHead",
    "LedgerPins",
    "NotFound",
    "Patient",
    "Permission",
    "RateLimited",
    "Receipt",
    "Record",
    "RecordExists",
    "RecordProof",
    "RetryPolicy",
    "RuleViolation",
    "Suspended",
    "TreeHead",
    "Unavailable",
    "Uploaded",
    "UsageError",
    "VerificationFailed",
]

_ERRORS = frozenset(
    {
        "AuthenticationFailed",
        "Conflict",
        "Denied",
        "EhrgateError",
        "IntegrityFailure",
        "InvalidRequest",
        "NotFound",
        "RateLimited",
        "RecordExists",
        "RuleViolation",
        "Suspended",
        "Unavailable",
        "UsageError",
        "VerificationFailed",
    }
)
_MODELS = frozenset(
    {
        "AccessEvent",
        "AccessRequest",
        "Fetched",
        "Identity",
        "LedgerHead",
        "Patient",
        "Permission",
        "Receipt",
        "Record",
        "RecordProof",
        "TreeHead",
        "Uploaded",
    }
)


def _module_of(name: str) -> str | None:
    if name in _ERRORS:
        return "ehrgate.errors"
    if name in _MODELS:
        return "ehrgate.models"
    return {
        "Client": "ehrgate.client",
        "RetryPolicy": "ehrgate._http",
        "LedgerPins": "ehrgate.trust",
    }.get(name)


def __getattr__(name: str) -> Any:
    module = _module_of(name)
    if module is None:
        raise AttributeError(f"module 'ehrgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
