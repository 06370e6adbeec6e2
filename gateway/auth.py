"""Challenge-response authentication with Ed25519 and short-lived bearer tokens.

1. `POST /v1/auth/challenge {identity_id}` returns a random single-use challenge and the
   gateway's audience id. A challenge is issued for any well-formed id, known or not, so
   that the endpoint does not tell who is enrolled.
2. The client signs the canonical JSON of `auth_statement(challenge, identity_id, audience)`
   with its Ed25519 identity key and posts it to `/v1/auth/token`. The challenge is spent by
   that attempt whether it succeeds or not.
3. The answer is a random bearer token. The gateway keeps only its SHA-256 (a stolen
   database or memory dump holds no usable token, and a lookup by hash leaks no timing
   about the token itself), with the identity and the expiry, in its `AuthState`: this
   process's memory for a single gateway (a token is then worth nothing after a restart;
   clients simply authenticate again), or the ledger's database when several replicas
   serve one ledger (`gateway.authstate`).

Every authenticated request looks the identity up again and refuses it the moment the ledger
says it is suspended; a token is only a short cut for "this client proved its key lately".
With a shared state, the token lookup also returns the ledger's size, and the replica reads
the entries other replicas appended before it looks (`IdentityDirectory.follow`).

Limits. Both steps are anonymous, so no limit is ever keyed by the identity a request
merely claims: a stranger who knows an identity id would spend its holder's allowance and
lock the holder out. Instead every attempt, challenge or token, right or wrong, takes from
the bucket of its client address (`limiter`), and challenge issuance also takes from one
gateway-wide bucket (`global_limiter`) that caps the work of a flood from many addresses.
Outstanding challenges are bounded per identity and client address: a new one evicts the
oldest of the same pair beyond `CHALLENGES_PER_REQUESTER`, so a flood for someone's id only
evicts the flood's own challenges, never the holder's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from envelope import PublicIdentity
from envelope.errors import InvalidSignature
from gateway.authstate import AuthState, MemoryAuthState
from gateway.clock import Clock, checked_now
from gateway.errors import (
    AuthenticationFailed,
    IdentitySuspended,
    InvalidChallenge,
    InvalidToken,
)
from gateway.metrics import GatewayMetrics
from gateway.ratelimit import Buckets, RateLimiter

log = logging.getLogger("gateway.auth")

AUTH_PURPOSE = "ehrgate/auth/v1"
TOKEN_PREFIX = "egt_"
CHALLENGES_PER_REQUESTER = 4


class IdentityDirectory(Protocol):
    """What authentication needs to know of identities; the ledger's state provides it."""

    def identity(self, identity_id: str) -> PublicIdentity | None:
        """The identity's public keys and role, or None if it was never enrolled."""
        ...

    def is_suspended(self, identity_id: str) -> bool:
        """True once an admin has suspended the identity."""
        ...

    def follow(self, ledger_size: int) -> None:
        """Read the entries other processes appended, if this view knows fewer than
        *ledger_size* (the size the shared database reported)."""
        ...


def auth_statement(*, challenge: str, identity_id: str, audience: str) -> dict[str, str]:
    """The object a client signs to answer *challenge* (its canonical JSON, that is)."""
    return {
        "purpose": AUTH_PURPOSE,
        "challenge": challenge,
        "identity_id": identity_id,
        "audience": audience,
    }


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    challenge: str
    expires_at: datetime
    audience: str


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime
    identity: PublicIdentity


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    identity: PublicIdentity
    token_expires_at: datetime

    @property
    def id(self) -> str:
        return self.identity.id

    @property
    def role(self) -> str:
        return self.identity.role


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Authenticator:
    """Issues and redeems challenges, issues and checks tokens, rate-limits the attempts."""

    def __init__(
        self,
        *,
        audience: str,
        challenge_lifetime: timedelta,
        token_lifetime: timedelta,
        rate_limit_per_minute: int,
        global_rate_limit_per_minute: int,
        clock: Clock,
        metrics: GatewayMetrics,
    ) -> None:
        self.audience = audience
        self.challenge_lifetime = challenge_lifetime
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.metrics = metrics
        # Per client address, keyed "client:<address>" (patient registration shares it).
        self.limiter = RateLimiter(rate_limit_per_minute, clock=clock, name="auth")
        self.global_limiter = RateLimiter(
            global_rate_limit_per_minute, clock=clock, max_keys=1, name="auth-global"
        )
        self.state: AuthState = MemoryAuthState()

    def share(self, state: AuthState, buckets: Buckets) -> None:
        """Keep challenges, tokens and the limits' buckets in *state* and *buckets*, which
        other replicas of the gateway share (before the first request)."""
        self.state = state
        self.limiter.buckets = buckets
        self.global_limiter.buckets = buckets

    @property
    def blocking(self) -> bool:
        """True when a call may wait for the database (then it belongs off the event loop)."""
        return self.state.shared

    def _refused(self, reason: str, identity_id: str | None, client: str | None) -> None:
        """Count and log a refused attempt (never the token or signature themselves)."""
        self.metrics.auth_failures.labels(reason).inc()
        log.warning(
            "authentication refused (%s) for identity %s from %s",
            reason,
            identity_id or "unknown",
            client or "unknown",
        )

    def _limit(self, client: str | None) -> None:
        self.limiter.hit(f"client:{client or 'unknown'}")

    def challenge(self, identity_id: str, *, client: str | None) -> IssuedChallenge:
        self._limit(client)
        self.global_limiter.hit("challenges")
        now = checked_now(self.clock)
        challenge = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        expires_at = now + self.challenge_lifetime
        self.state.add_challenge(
            challenge,
            identity_id,
            client or "unknown",
            now=now.timestamp(),
            expires_at=expires_at.timestamp(),
            per_requester=CHALLENGES_PER_REQUESTER,
        )
        return IssuedChallenge(challenge, expires_at, self.audience)

    def token(
        self,
        identity_id: str,
        challenge: str,
        signature: bytes,
        *,
        directory: IdentityDirectory,
        client: str | None,
    ) -> IssuedToken:
        self._limit(client)
        now = checked_now(self.clock)
        # Spent by this attempt, whatever its outcome: a challenge cannot be retried.
        entry = self.state.take_challenge(challenge)
        if entry is None or entry.identity_id != identity_id or entry.expires_at <= now.timestamp():
            self._refused("invalid-challenge", identity_id, client)
            raise InvalidChallenge(
                "the challenge is unknown, expired, already used or issued to another identity;"
                " ask for a new one"
            )
        size = self.state.ledger_size()
        if size is not None:
            directory.follow(size)
        identity = directory.identity(identity_id)
        if identity is None:
            self._refused("unknown-identity", identity_id, client)
            raise AuthenticationFailed("the signature does not prove this identity")
        statement = auth_statement(
            challenge=challenge, identity_id=identity_id, audience=self.audience
        )
        try:
            identity.verify_key.verify(statement, signature)
        except InvalidSignature:
            self._refused("bad-signature", identity_id, client)
            raise AuthenticationFailed("the signature does not prove this identity") from None
        if directory.is_suspended(identity_id):
            self._refused("suspended", identity_id, client)
            raise IdentitySuspended(f"identity {identity_id} is suspended")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = now + self.token_lifetime
        digest = _token_digest(token)
        self.state.add_token(
            digest, identity_id, now=now.timestamp(), expires_at=expires_at.timestamp()
        )
        return IssuedToken(token, expires_at, identity)

    def authenticate(
        self, token: str, *, directory: IdentityDirectory, client: str | None = None
    ) -> Principal:
        """The principal behind *token*, checked against the directory right now."""
        now = checked_now(self.clock)
        found = self.state.find_token(_token_digest(token), now=now.timestamp())
        if found is None:
            self._refused("invalid-token", None, client)
            raise InvalidToken("the bearer token is unknown or expired; authenticate again")
        if found.ledger_size is not None:
            directory.follow(found.ledger_size)
        identity_id = found.identity_id
        if directory.is_suspended(identity_id):
            self._refused("suspended", identity_id, client)
            raise IdentitySuspended(f"identity {identity_id} is suspended")
        identity = directory.identity(identity_id)
        if identity is None:
            raise InvalidToken("the identity behind this token no longer exists")
        return Principal(identity, datetime.fromtimestamp(found.expires_at, UTC))
