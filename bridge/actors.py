"""Who is calling the bridge: a hospital system or a clinician, from a verified token.

A `TokenVerifier` turns a bearer token into an `Actor` or raises `AuthFailed`. The SMART
Backend Services verifier (systems) and the OpenID Connect verifier (clinicians) both
implement it; the FHIR routes depend on the protocol only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated caller and what its token allows."""

    kind: Literal["system", "clinician"]
    identity: str
    """The ehrgate identity in the bridge's key store this caller acts as."""
    subject: str
    """The SMART client id or the OpenID Connect subject, as the token named it."""
    scopes: frozenset[str]
    """SMART scopes such as `system/DocumentReference.crs`; a scope never widens what the
    patient granted on the ledger."""

    def may(self, resource: str, interaction: str) -> bool:
        """Whether a scope covers *interaction* (one of c, r, u, d, s) on *resource*."""
        for scope in self.scopes:
            context, _, rest = scope.partition("/")
            name, _, actions = rest.partition(".")
            if context not in ("system", "user") or name not in (resource, "*"):
                continue
            if actions in ("*", "read" if interaction in "rs" else "write"):
                return True
            if interaction in actions and set(actions) <= set("cruds"):
                return True
        return False


class TokenVerifier(Protocol):
    """Verifies a bearer token presented to the bridge."""

    def verify(self, token: str) -> Actor:
        """The caller the token authenticates; raises `bridge.errors.AuthFailed`."""
        ...
