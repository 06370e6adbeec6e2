"""The bridge's front doors made from its settings: SMART Backend Services (token endpoint
and verifier), OpenID Connect for clinicians, and the HL7 v2 MLLP listener.

The access-token key is kept in the data dir (created on first start, mode 0600), so tokens
stay valid across restarts; the `jti` replay cache is a SQLite file there too.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from bridge.actors import TokenVerifier
from bridge.categories import category_for_txa2
from bridge.errors import BridgeUsageError
from bridge.hl7v2 import ListenerSettings, MdmReceiver, MdmRules, MllpListener
from bridge.service import Bridge
from bridge.settings import BridgeSettings
from bridge.smart import (
    AccessTokens,
    OidcSettings,
    OidcTokenVerifier,
    SmartClient,
    SmartConfig,
    SmartTokenVerifier,
    SqliteReplayCache,
    smart_router,
)


@dataclass
class AuthParts:
    """The routers to mount and the token verifiers to ask, in order."""

    routers: list[APIRouter] = field(default_factory=list)
    verifiers: list[TokenVerifier] = field(default_factory=list)


def auth_parts(settings: BridgeSettings) -> AuthParts:
    """SMART and OpenID Connect as configured; BridgeUsageError naming a bad setting."""
    parts = AuthParts()
    if settings.smart_clients:
        config = smart_config(settings)
        tokens = AccessTokens(
            config.token_url,
            lifetime=config.token_lifetime,
            key=load_or_make_token_key(
                settings.token_key_file or settings.data_dir / "token-key.jwk"
            ),
        )
        replay = replay_cache(settings.replay_cache or settings.data_dir / "replay.sqlite3")
        parts.routers.append(smart_router(config, tokens, replay=replay))
        parts.verifiers.append(SmartTokenVerifier(config, tokens))
    if settings.oidc_issuer is not None:
        parts.verifiers.append(OidcTokenVerifier(oidc_settings(settings)))
    return parts


def replay_cache(path: Path) -> SqliteReplayCache:
    """The `jti` replay cache in *path* (its directory made if needed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteReplayCache(path)
    except (OSError, sqlite3.Error) as exc:
        raise BridgeUsageError(f"cannot open the replay cache {path}: {exc}") from exc


def smart_config(settings: BridgeSettings) -> SmartConfig:
    token_url = settings.token_url
    if token_url is None and settings.public_url:
        token_url = settings.public_url.rstrip("/") + "/auth/token"
    if token_url is None:
        raise BridgeUsageError(
            "SMART clients are registered but the token endpoint's URL is unknown: set "
            "EHRGATE_BRIDGE_TOKEN_URL or EHRGATE_BRIDGE_PUBLIC_URL"
        )
    clients = {
        client_id: SmartClient.register(
            client_id,
            jwks=entry.jwks if isinstance(entry.jwks, Path) else dict(entry.jwks),
            identity=entry.identity,
            scopes=entry.scopes,
        )
        for client_id, entry in settings.smart_clients.items()
    }
    return SmartConfig(token_url=token_url, clients=clients)


def oidc_settings(settings: BridgeSettings) -> OidcSettings:
    if settings.oidc_jwks is None or settings.oidc_audience is None:
        raise BridgeUsageError(
            "OpenID Connect needs EHRGATE_BRIDGE_OIDC_JWKS (the provider's JWKS file) and "
            "EHRGATE_BRIDGE_OIDC_AUDIENCE besides EHRGATE_BRIDGE_OIDC_ISSUER"
        )
    assert settings.oidc_issuer is not None
    return OidcSettings.load(
        issuer=settings.oidc_issuer,
        jwks=settings.oidc_jwks,
        audience=settings.oidc_audience,
        algorithms=settings.oidc_algorithms,
        identity_claim=settings.oidc_identity_claim,
        identities=settings.oidc_identities,
    )


def load_or_make_token_key(path: Path) -> ECKey:
    """The bridge's P-256 access-token key from *path*, made (mode 0600) when absent."""
    if not path.exists():
        key = ECKey.generate_key("P-256", parameters={"kid": "bridge"}, private=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_make_token_key(path)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(key.as_dict(private=True), out)
        return key
    if path.stat().st_mode & 0o077:
        raise BridgeUsageError(f"the access-token key {path} is readable by others: chmod 600 it")
    try:
        key = ECKey.import_key(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, JoseError) as exc:
        raise BridgeUsageError(f"the access-token key {path} does not load: {exc}") from exc
    if not key.is_private or key.as_dict().get("crv") != "P-256":
        raise BridgeUsageError(f"the access-token key {path} is not a private P-256 key")
    return key


def mllp_listener(settings: BridgeSettings, bridge: Bridge) -> MllpListener | None:
    """The HL7 v2 listener when EHRGATE_BRIDGE_MLLP_PORT is set, publishing as the MLLP
    identity (default: the system identity)."""
    if settings.mllp_port is None:
        return None
    table = settings.category_table
    rules = MdmRules(
        category_for_type=lambda value: category_for_txa2(value, table),
        assigning_authorities=settings.mllp_assigning_authorities,
    )
    actor = settings.mllp_identity or settings.system_identity
    receiver = MdmReceiver(bridge.publisher, rules, actor=actor)
    return MllpListener(
        receiver, ListenerSettings(host=settings.mllp_host, port=settings.mllp_port)
    )
