"""Authentication at the bridge: SMART Backend Services for systems, OpenID Connect for
clinicians (DESIGN §10).

Wiring: `tokens = AccessTokens(config.token_url, lifetime=config.token_lifetime)`;
`app.include_router(smart_router(config, tokens))`; systems' bearer tokens are verified by
`SmartTokenVerifier(config, tokens)`, clinicians' by `OidcTokenVerifier(OidcSettings.load(...))`.
"""

from bridge.smart.config import SmartClient, SmartConfig
from bridge.smart.oidc import OidcSettings, OidcTokenVerifier
from bridge.smart.replay import MemoryReplayCache, ReplayCache, SqliteReplayCache
from bridge.smart.router import smart_configuration, smart_router
from bridge.smart.tokens import AccessTokens
from bridge.smart.verifier import SmartTokenVerifier

__all__ = [
    "AccessTokens",
    "MemoryReplayCache",
    "OidcSettings",
    "OidcTokenVerifier",
    "ReplayCache",
    "SmartClient",
    "SmartConfig",
    "SmartTokenVerifier",
    "SqliteReplayCache",
    "smart_configuration",
    "smart_router",
]
