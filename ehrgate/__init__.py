"""The ehrgate client: the `Client` SDK, its exceptions and results, and the command line.

Names are imported on first use, so that `import ehrgate` and the offline commands
(`ehrgate keys ...`) start without loading the HTTP stack. Errors are drawn in
`ehrgate.errors`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ehrgate._http import (
        RetryPolicy as RetryPolicy,
    )
    from ehrgate.client import (
        Client as Client,
    )
    from ehrgate.errors import (
        AuthenticationFailed as AuthenticationFailed,
        Conflict as Conflict,
        Denied as Denied,
        EhrgateError as EhrgateError,
        IntegrityFailure as IntegrityFailure,
        InvalidRequest as InvalidRequest,
        NoQuorum as NoQuorum,
        NotFound as NotFound,
        RateLimited as RateLimited,
        RecordErased as RecordErased,
        RecordExists as RecordExists,
        RuleViolation as RuleViolation,
        SplitView as SplitView,
        Suspended as Suspended,
        Unavailable as Unavailable,
        UsageError as UsageError,
        VerificationFailed as VerificationFailed,
    )
    from ehrgate.federation import (
        FederatedClient as FederatedClient,
        GatewayConfig as GatewayConfig,
    )
    from ehrgate.models import (
        AccessEvent as AccessEvent,
        AccessRequest as AccessRequest,
        Erased as Erased,
        Fetched as Fetched,
        Identity as Identity,
        LedgerHead as LedgerHead,
        Patient as Patient,
        Permission as Permission,
        Receipt as Receipt,
        Record as Record,
        RecordProof as RecordProof,
        TreeHead as TreeHead,
        Uploaded as Uploaded,
    )
    from ehrgate.trust import (
        LedgerPins as LedgerPins,
    )
    from ehrgate.witness_policy import (
        WitnessPolicy as WitnessPolicy,
    )

# The public surface, once: each name and the module that defines it. The imports above
# only tell type checkers the same; tests/client/test_public_api.py holds the two equal.
_EXPORTS: dict[str, str] = {
    "RetryPolicy": "ehrgate._http",
    "Client": "ehrgate.client",
    "AuthenticationFailed": "ehrgate.errors",
    "Conflict": "ehrgate.errors",
    "Denied": "ehrgate.errors",
    "EhrgateError": "ehrgate.errors",
    "IntegrityFailure": "ehrgate.errors",
    "InvalidRequest": "ehrgate.errors",
    "NoQuorum": "ehrgate.errors",
    "NotFound": "ehrgate.errors",
    "RateLimited": "ehrgate.errors",
    "RecordErased": "ehrgate.errors",
    "RecordExists": "ehrgate.errors",
    "RuleViolation": "ehrgate.errors",
    "SplitView": "ehrgate.errors",
    "Suspended": "ehrgate.errors",
    "Unavailable": "ehrgate.errors",
    "UsageError": "ehrgate.errors",
    "VerificationFailed": "ehrgate.errors",
    "AccessEvent": "ehrgate.models",
    "AccessRequest": "ehrgate.models",
    "Erased": "ehrgate.models",
    "Fetched": "ehrgate.models",
    "Identity": "ehrgate.models",
    "LedgerHead": "ehrgate.models",
    "Patient": "ehrgate.models",
    "Permission": "ehrgate.models",
    "Receipt": "ehrgate.models",
    "Record": "ehrgate.models",
    "RecordProof": "ehrgate.models",
    "TreeHead": "ehrgate.models",
    "Uploaded": "ehrgate.models",
    "FederatedClient": "ehrgate.federation",
    "GatewayConfig": "ehrgate.federation",
    "LedgerPins": "ehrgate.trust",
    "WitnessPolicy": "ehrgate.witness_policy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ehrgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
