"""SmartTokenVerifier (the bridge's access tokens), the replay cache, OidcTokenVerifier."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from bridge.actors import Actor
from bridge.errors import AuthFailed, BridgeUsageError
from bridge.smart import (
    AccessTokens,
    MemoryReplayCache,
    OidcSettings,
    OidcTokenVerifier,
    SmartConfig,
    SmartTokenVerifier,
)
from bridge.smart.replay import ReplayCache, ReplayCacheFull, SqliteReplayCache
from tests.bridge.smart.support import (
    NOW,
    TOKEN_URL,
    Clock,
    assertion,
    make_config,
    public_jwks,
    reheader,
)

# --- the bridge's access tokens ---------------------------------------------------------


def test_access_token_expires_after_its_lifetime() -> None:
    clock = Clock()
    config = make_config()
    tokens = AccessTokens(TOKEN_URL, clock=clock)
    token = tokens.issue("aria-engine", frozenset({"system/Binary.r"}))
    verifier = SmartTokenVerifier(config, tokens)
    assert verifier.verify(token).subject == "aria-engine"
    clock.now += 299
    assert verifier.verify(token).identity == "hospital-system"
    clock.now += 1
    with pytest.raises(AuthFailed, match="expired"):
        verifier.verify(token)


def test_access_tokens_of_another_bridge_or_tampered_are_refused() -> None:
    config = make_config()
    ours = AccessTokens(TOKEN_URL, clock=Clock())
    theirs = AccessTokens(TOKEN_URL, clock=Clock())
    verifier = SmartTokenVerifier(config, ours)
    with pytest.raises(AuthFailed, match="not valid"):
        verifier.verify(theirs.issue("aria-engine", frozenset({"system/Binary.r"})))
    token = ours.issue("aria-engine", frozenset({"system/Binary.r"}))
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/Binary.r system/DocumentReference.crs"
    widened = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthFailed, match="not valid"):
        verifier.verify(f"{head}.{widened}.{signature}")
    other_issuer = AccessTokens("https://other.test/auth/token", key=None, clock=Clock())
    with pytest.raises(AuthFailed):
        verifier.verify(other_issuer.issue("aria-engine", frozenset({"system/Binary.r"})))


def test_a_client_assertion_is_not_an_access_token() -> None:
    verifier = SmartTokenVerifier(make_config(), AccessTokens(TOKEN_URL, clock=Clock()))
    with pytest.raises(AuthFailed, match="not an access token"):
        verifier.verify(assertion())


def test_only_tokens_typed_at_jwt_pass_even_under_the_bridge_key() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "bridge"}, private=True)
    tokens = AccessTokens(TOKEN_URL, key=key, clock=Clock())
    verifier = SmartTokenVerifier(make_config(), tokens)
    claims = {
        "iss": TOKEN_URL,
        "aud": TOKEN_URL,
        "sub": "aria-engine",
        "scope": "system/Binary.r",
        "exp": int(NOW) + 60,
    }
    plain = jwt.encode({"alg": "ES256", "kid": "bridge"}, claims, key, algorithms=["ES256"])
    with pytest.raises(AuthFailed, match="not an access token"):
        verifier.verify(plain)
    typed = jwt.encode(
        {"alg": "ES256", "kid": "bridge", "typ": "at+jwt"}, claims, key, algorithms=["ES256"]
    )
    assert verifier.verify(typed).scopes == frozenset({"system/Binary.r"})
    with pytest.raises(BridgeUsageError, match="P-256"):
        AccessTokens(TOKEN_URL, key=ECKey.generate_key("P-384", private=True))


def test_a_client_removed_or_narrowed_loses_access_at_once() -> None:
    clock = Clock()
    tokens = AccessTokens(TOKEN_URL, clock=clock)
    token = tokens.issue(
        "aria-engine", frozenset({"system/Binary.r", "system/DocumentReference.crs"})
    )
    config = make_config()
    narrowed = SmartConfig(
        token_url=TOKEN_URL,
        clients={
            "aria-engine": type(config.clients["aria-engine"])(
                "aria-engine",
                config.clients["aria-engine"].jwks,
                "hospital-system",
                frozenset({"system/Binary.r"}),
            )
        },
    )
    assert SmartTokenVerifier(narrowed, tokens).verify(token).scopes == frozenset(
        {"system/Binary.r"}
    )
    gone = SmartConfig(token_url=TOKEN_URL, clients={})
    with pytest.raises(AuthFailed, match="no longer registered"):
        SmartTokenVerifier(gone, tokens).verify(token)


def test_config_bounds_token_lifetime() -> None:
    with pytest.raises(BridgeUsageError, match="300"):
        make_config(token_lifetime=301)
    with pytest.raises(BridgeUsageError, match="absolute"):
        SmartConfig(token_url="/auth/token", clients={})


# --- replay cache ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReplayCache]:
    if request.param == "memory":
        yield MemoryReplayCache(max_entries=2)
    else:
        store = SqliteReplayCache(tmp_path / "jti.db", max_entries=2)
        yield store
        store.close()


def test_replay_cache_is_bounded_and_forgets_only_expired_entries(cache: ReplayCache) -> None:
    assert cache.use("c", "a", expires=NOW + 10, now=NOW)
    assert not cache.use("c", "a", expires=NOW + 10, now=NOW + 5)
    assert cache.use("other", "a", expires=NOW + 100, now=NOW)
    with pytest.raises(ReplayCacheFull):
        cache.use("c", "b", expires=NOW + 10, now=NOW + 5)
    # After "a" of client c expired it is forgotten (the assertion itself is expired by then).
    assert cache.use("c", "b", expires=NOW + 200, now=NOW + 11)
    assert len(cache) == 2  # type: ignore[arg-type]
    assert not cache.use("other", "a", expires=NOW + 100, now=NOW + 50)


def test_sqlite_replay_cache_survives_a_restart(tmp_path: Path) -> None:
    first = SqliteReplayCache(tmp_path / "jti.db")
    assert first.use("c", "a", expires=NOW + 100, now=NOW)
    first.close()
    again = SqliteReplayCache(tmp_path / "jti.db")
    assert not again.use("c", "a", expires=NOW + 100, now=NOW + 1)
    assert again.use("c", "a", expires=NOW + 300, now=NOW + 101)
    again.close()


# --- OpenID Connect clinicians ------------------------------------------------------------

ISSUER = "https://login.hospital.test/realms/staff"
AUDIENCE = "ehrgate-bridge"
_PROVIDER = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)
_PROVIDER_EC = ECKey.generate_key("P-256", parameters={"kid": "idp-2"}, private=True)
_STRANGER = RSAKey.generate_key(2048, parameters={"kid": "idp-1"}, private=True)


def id_token(key: Any = _PROVIDER, alg: str = "RS256", **changes: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "f3a9c2",
        "exp": int(NOW) + 600,
        "iat": int(NOW),
        "preferred_username": "dr.house",
        "ehrgate_identity": "clinician-house",
        "scope": "openid user/DocumentReference.rs",
        **changes,
    }
    return jwt.encode(
        {"alg": alg, "kid": key.kid},
        {k: v for k, v in claims.items() if v is not None},
        key,
        algorithms=[alg],
    )


def oidc(tmp_path: Path, **changes: Any) -> OidcTokenVerifier:
    path = tmp_path / "idp-jwks.json"
    path.write_text(json.dumps(public_jwks(_PROVIDER, _PROVIDER_EC)))
    settings = OidcSettings.load(issuer=ISSUER, jwks=path, audience=AUDIENCE, **changes)
    return OidcTokenVerifier(settings, clock=Clock())


def test_a_clinician_token_becomes_a_clinician_actor(tmp_path: Path) -> None:
    actor = oidc(tmp_path).verify(id_token())
    assert actor == Actor(
        kind="clinician",
        identity="clinician-house",
        subject="f3a9c2",
        scopes=frozenset({"openid", "user/DocumentReference.rs"}),
    )
    assert oidc(tmp_path).verify(id_token(_PROVIDER_EC, "ES256")).identity == "clinician-house"


def test_the_identity_claim_can_be_mapped_through_a_table(tmp_path: Path) -> None:
    verifier = oidc(
        tmp_path, identity_claim="preferred_username", identities={"dr.house": "clinician-7"}
    )
    assert verifier.verify(id_token()).identity == "clinician-7"
    with pytest.raises(AuthFailed, match="no clinician identity is mapped"):
        verifier.verify(id_token(preferred_username="dr.wilson"))
    with pytest.raises(AuthFailed, match="no preferred_username"):
        verifier.verify(id_token(preferred_username=None))


OIDC_REFUSED: list[tuple[str, Any, str]] = [
    ("another issuer", lambda: id_token(_STRANGER, iss="https://evil.test"), "issued by"),
    ("another issuer's key under our issuer", lambda: id_token(_STRANGER), "does not verify"),
    ("wrong audience", lambda: id_token(aud="another-app"), "aud"),
    ("expired", lambda: id_token(exp=int(NOW) - 31), "expired"),
    ("no exp", lambda: id_token(exp=None), "expired"),
    ("not yet valid", lambda: id_token(nbf=int(NOW) + 31), "nbf"),
    ("alg not allowed", lambda: id_token(alg="RS384"), "'RS384' is not allowed"),
    ("alg none", lambda: reheader(id_token(), {"alg": "none", "kid": "idp-1"}), "'none'"),
    ("HS256", lambda: reheader(id_token(), {"alg": "HS256", "kid": "idp-1"}), "'HS256'"),
    ("no identity claim", lambda: id_token(ehrgate_identity=None), "ehrgate_identity"),
    ("garbage", lambda: "x.y", "compact JWS"),
]


@pytest.mark.parametrize(("name", "make", "reason"), OIDC_REFUSED, ids=[r[0] for r in OIDC_REFUSED])
def test_bad_clinician_tokens_are_refused(
    tmp_path: Path, name: str, make: Any, reason: str
) -> None:
    with pytest.raises(AuthFailed, match=reason):
        oidc(tmp_path).verify(make())


def test_leeway_tolerates_small_clock_skew(tmp_path: Path) -> None:
    assert oidc(tmp_path).verify(id_token(exp=int(NOW) - 20, nbf=int(NOW) + 20)).subject == "f3a9c2"


def test_oidc_settings_refuse_symmetric_algorithms_and_private_jwks() -> None:
    with pytest.raises(BridgeUsageError, match="algorithms"):
        OidcSettings.load(
            issuer=ISSUER, jwks=public_jwks(_PROVIDER), audience=AUDIENCE, algorithms=["HS256"]
        )
    with pytest.raises(BridgeUsageError, match="private"):
        OidcSettings.load(
            issuer=ISSUER, jwks={"keys": [_PROVIDER.as_dict(private=True)]}, audience=AUDIENCE
        )
