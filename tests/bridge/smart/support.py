"""Test support: client keys, client assertions (well-formed and forged) and a config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bridge.smart import AccessTokens, SmartClient, SmartConfig, smart_router

with warnings.catch_warnings():
    # Starlette announces a future switch of its test client's HTTP library on import.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

TOKEN_URL = "https://bridge.hospital.test/auth/token"
NOW = 1_800_000_000.0
ALLOWED = ("system/DocumentReference.crs", "system/Binary.r")
_RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)
_EC = ECKey.generate_key("P-384", parameters={"kid": "ec-1"}, private=True)
_OTHER_RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"}, private=True)


def rsa_key() -> RSAKey:
    return _RSA


def ec_key() -> ECKey:
    return _EC


def forger_key() -> RSAKey:
    """Another RSA key that claims the registered key's kid."""
    return _OTHER_RSA


def public_jwks(*keys: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


def make_config(**changes: Any) -> SmartConfig:
    client = SmartClient.register(
        "aria-engine", jwks=public_jwks(_RSA, _EC), identity="hospital-system", scopes=ALLOWED
    )
    return SmartConfig(token_url=TOKEN_URL, clients={"aria-engine": client}, **changes)


def claims(now: float = NOW, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "aria-engine",
        "sub": "aria-engine",
        "aud": TOKEN_URL,
        "exp": int(now) + 240,
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def assertion(
    key: RSAKey | ECKey | None = None,
    alg: str = "RS384",
    header: dict[str, Any] | None = None,
    **changes: Any,
) -> str:
    key = key or _RSA
    head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    return jwt.encode(head, claims(**changes), key, algorithms=[alg])


def reheader(token: str, header: dict[str, Any]) -> str:
    """*token* with its header replaced (the signature then covers another header)."""
    _, payload, signature = token.split(".")
    return f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(public_pem: bytes, **changes: Any) -> str:
    """The classic confusion attack: HMAC-signed with the RSA public key as the secret."""
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
        + "."
        + _b64(json.dumps(claims(**changes)).encode())
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(mac)


def unsigned(**changes: Any) -> str:
    """alg none, no signature."""
    return (
        _b64(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())
        + "."
        + _b64(json.dumps(claims(**changes)).encode())
        + "."
    )


def rsa_public_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = _RSA.public_key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    config: SmartConfig = field(default_factory=make_config)

    def __post_init__(self) -> None:
        self.tokens = AccessTokens(TOKEN_URL, clock=self.clock)

    def app(self) -> FastAPI:
        app = FastAPI()
        app.include_router(smart_router(self.config, self.tokens, clock=self.clock))
        return app


def form(
    assertion_value: str | None, scope: str | None = "system/DocumentReference.crs", **extra: str
) -> dict[str, str]:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "scope": scope,
        "client_assertion": assertion_value,
        **extra,
    }
    return {k: v for k, v in data.items() if v is not None}
