"""JOSE helpers shared by the SMART and OpenID Connect verifiers (joserfc underneath).

`load_jwks` reads a registered JWKS (inline or from a file), public keys only, each with a
`kid`. `peek` reads a compact JWS's header and claims *without* verifying them: only to pick
the key that will verify it; nothing read by `peek` is trusted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from bridge.errors import BridgeUsageError

_KEY_FOR_ALG: dict[str, tuple[type[Any], str | None]] = {
    "RS256": (RSAKey, None),
    "RS384": (RSAKey, None),
    "RS512": (RSAKey, None),
    "ES256": (ECKey, "P-256"),
    "ES384": (ECKey, "P-384"),
    "ES512": (ECKey, "P-521"),
}
SIGNATURE_ALGORITHMS = frozenset(_KEY_FOR_ALG)
"""The asymmetric algorithms any verifier here may be configured with (never none or HS*)."""


class MalformedToken(ValueError):
    """Not a compact JWS with JSON header and claims."""


def load_jwks(source: Mapping[str, Any] | str | Path, what: str) -> KeySet:
    """A JWKS given inline (a mapping) or as the path of a JSON file, public keys only."""
    if isinstance(source, Mapping):
        data: Any = source
    else:
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BridgeUsageError(f"{what}: cannot read the JWKS file {source}: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise BridgeUsageError(f'{what}: a JWKS is a JSON object {{"keys": [...]}}')
    for entry in data["keys"]:
        if not isinstance(entry, Mapping) or not entry.get("kid"):
            raise BridgeUsageError(f"{what}: every key in the JWKS needs a kid")
        if any(name in entry for name in ("d", "p", "q", "k")):
            raise BridgeUsageError(
                f"{what}: the JWKS holds private or symmetric key material (kid "
                f"{entry['kid']}); register the public keys only"
            )
        if entry.get("kty") not in ("RSA", "EC"):
            raise BridgeUsageError(f"{what}: key {entry['kid']} is not an RSA or EC key")
    try:
        return KeySet.import_key_set(dict(data))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError) as exc:
        raise BridgeUsageError(f"{what}: the JWKS does not load: {exc}") from exc


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The unverified header and claims of a compact JWS; raises `MalformedToken`."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise MalformedToken("not a compact JWS (three base64url parts separated by dots)")
    try:
        header, claims = (json.loads(_b64url(part)) for part in parts[:2])
    except (ValueError, binascii.Error) as exc:
        raise MalformedToken(f"its header or claims are not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise MalformedToken("its header and claims must be JSON objects")
    return header, claims


def key_for(keys: KeySet, header: Mapping[str, Any]) -> RSAKey | ECKey:
    """The key of *keys* the header's `kid` names, of the type its `alg` needs."""
    kid = header.get("kid")
    alg = str(header.get("alg"))
    matches = [key for key in keys if kid is None or key.kid == kid]
    if kid is None and len(matches) != 1:
        raise LookupError("the token has no kid and more than one key is registered")
    kind, curve = _KEY_FOR_ALG[alg]
    for key in matches:
        if isinstance(key, kind) and (curve is None or key.as_dict().get("crv") == curve):
            return key  # type: ignore[no-any-return]
    raise LookupError(f"no registered {alg} key with kid {kid!r}")


def verified_claims(token: str, key: RSAKey | ECKey, alg: str) -> dict[str, Any]:
    """The claims of *token* once its signature verifies with *key* under *alg* exactly."""
    try:
        claims: dict[str, Any] = dict(jwt.decode(token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError) as exc:
        raise ValueError(f"the signature does not verify ({type(exc).__name__})") from exc
    return claims


def audience_matches(aud: object, expected: str) -> bool:
    """Whether an `aud` claim (a string or a list of strings) names *expected*."""
    if isinstance(aud, str):
        return aud == expected
    return isinstance(aud, list) and expected in aud


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
