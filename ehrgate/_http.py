"""The SDK's HTTP layer: one httpx client, challenge-response login, safe retries.

Login: `POST /v1/auth/challenge`, sign the canonical JSON of
`{purpose: "ehrgate/auth/v1", challenge, identity_id, audience}` with the identity's
Ed25519 key, `POST /v1/auth/token`; the bearer token is renewed shortly before it expires
and, should the gateway still call it invalid (a restart forgets every token), once more
on that answer.

Retries, with exponential backoff, only where repeating cannot do harm:
* any request whose connection could not be made (nothing was sent);
* idempotent requests (GET) also after a timeout, a broken connection or a 503;
* never a request whose streamed body had already started to go out.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ehrgate.errors import (
    AuthenticationFailed,
    EhrgateError,
    RateLimited,
    Unavailable,
    UsageError,
    error_for_problem,
    map_transport_errors,
)
from envelope import IdentityKeys, b64encode
from ledger.wire import problems

AUTH_PURPOSE = "ehrgate/auth/v1"
# Renew a token this long before the gateway says it expires (clock skew, slow calls).
TOKEN_MARGIN_SECONDS = 30.0
CLOCK_SKEW_TOLERANCE = 5.0

Content = bytes | Iterable[bytes] | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to repeat a request that may safely be repeated."""

    attempts: int = 4
    backoff: float = 0.2
    max_backoff: float = 3.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait: float = min(self.max_backoff, self.backoff * 2.0**attempt)
        if retry_after is not None:
            wait = min(self.max_backoff, max(wait, retry_after))
        return wait


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    renew_at: float  # time.monotonic()
    generation: int


class _TrackedBody:
    """A one-shot streamed body that remembers whether any of it was handed to httpx."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        yield from self._chunks


def _auth_statement(challenge: str, identity_id: str, audience: str) -> dict[str, str]:
    return {
        "purpose": AUTH_PURPOSE,
        "challenge": challenge,
        "identity_id": identity_id,
        "audience": audience,
    }


def _seconds_until(expires_at: str, response: httpx.Response) -> float:
    """Token lifetime; measured from the gateway's Date header when the two clocks differ
    by more than the header's coarseness (whole seconds, refreshed about once a second)."""
    try:
        expires = datetime.fromisoformat(expires_at)
    except ValueError:
        return 0.0
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    now = datetime.now(UTC)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        date = response.headers.get("date")
        if date:
            gateway_now = parsedate_to_datetime(date)
            if abs((gateway_now - now).total_seconds()) > CLOCK_SKEW_TOLERANCE:
                now = gateway_now + timedelta(seconds=1)
    return (expires - now).total_seconds()


class Connection:
    """A gateway connection for one identity (or none, for anonymous calls)."""

    def __init__(
        self,
        url: str,
        identity: IdentityKeys | None,
        *,
        timeout: float,
        retry: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"the gateway URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.identity = identity
        self.retry = retry
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": "ehrgate-client/1"},
        )
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._generation = 0
        self._sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        self._http.close()

    # --- authentication -------------------------------------------------------------

    def _login(self) -> _Token:
        identity = self.identity
        if identity is None:
            raise UsageError("this call needs an identity: give a key file (--as KEYFILE)")
        challenge = self.request(
            "POST",
            "/v1/auth/challenge",
            json={"identity_id": identity.id},
            authenticated=False,
        ).json()
        try:
            statement = _auth_statement(challenge["challenge"], identity.id, challenge["audience"])
        except (KeyError, TypeError) as exc:
            raise Unavailable("the gateway's challenge answer is malformed") from exc
        answer = self.request(
            "POST",
            "/v1/auth/token",
            json={
                "identity_id": identity.id,
                "challenge": challenge["challenge"],
                "signature": b64encode(identity.sign(statement)),
            },
            authenticated=False,
        )
        body = answer.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise Unavailable("the gateway's token answer is malformed")
        lifetime = _seconds_until(str(body.get("expires_at", "")), answer)
        self._generation += 1
        return _Token(
            token,
            time.monotonic() + max(0.0, lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 4)),
            self._generation,
        )

    def token(self, *, stale: int | None = None) -> _Token:
        """A valid token; a new one if there is none, it is due, or it is *stale*."""
        with self._token_lock:
            current = self._token
            if (
                current is None
                or time.monotonic() >= current.renew_at
                or (stale is not None and current.generation == stale)
            ):
                current = self._token = self._login()
            return current

    def forget_token(self) -> None:
        with self._token_lock:
            self._token = None

    # --- requests ---------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Content = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx.Response:
        """Send a request; return the successful response (read), or raise an EhrgateError."""
        return self._send(
            method,
            path,
            json=json,
            params=params,
            content=content,
            headers=headers,
            authenticated=authenticated,
            stream=False,
        )

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, *, params: dict[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A successful response whose body is read as it arrives (then closed)."""
        response = self._send(
            method,
            path,
            json=None,
            params=params,
            content=None,
            headers=None,
            authenticated=True,
            stream=True,
        )
        try:
            yield response
        finally:
            response.close()

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        params: dict[str, Any] | None,
        content: Content,
        headers: dict[str, str] | None,
        authenticated: bool,
        stream: bool,
    ) -> httpx.Response:
        idempotent = method in ("GET", "HEAD")
        tracked = None if content is None or isinstance(content, bytes) else _TrackedBody(content)
        body = content if tracked is None else tracked
        retries = _Retries(self.retry, self._sleep)
        renewed = False
        while True:
            token = self.token() if authenticated else None
            request_headers = dict(headers or {})
            if token is not None:
                request_headers["Authorization"] = f"Bearer {token.value}"
            request = self._http.build_request(
                method, path, json=json, params=params, content=body, headers=request_headers
            )
            response = self._deliver(request, stream, idempotent, tracked, retries)
            if response is None:
                continue
            if response.is_success:
                return response
            error = self._failure(response, stream)
            replayable = tracked is None or not tracked.started
            if token is not None and not renewed and replayable and _forgotten(response, error):
                # Expired early, or the gateway restarted and forgot it: log in once more.
                renewed = True
                self.token(stale=token.generation)
                continue
            if idempotent and response.status_code == 503 and retries.again(_retry_after(response)):
                continue
            raise _with_context(error, path)

    def _deliver(
        self,
        request: httpx.Request,
        stream: bool,
        idempotent: bool,
        tracked: _TrackedBody | None,
        retries: _Retries,
    ) -> httpx.Response | None:
        """The gateway's response, or None when the request failed on the way and may be
        sent again (after the retry policy's pause)."""
        with map_transport_errors(self.url):
            try:
                return self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Nothing reached the gateway: safe to repeat unless a one-shot body
                # had already been handed over.
                if (tracked is None or not tracked.started) and retries.again():
                    return None
                raise
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError):
                if idempotent and retries.again():
                    return None
                raise

    def _failure(self, response: httpx.Response, stream: bool) -> EhrgateError:
        """The client error for an unsuccessful *response* (read and closed if streamed)."""
        if stream:
            with map_transport_errors(self.url):
                response.read()
            response.close()
        return error_for_problem(response)


class _Retries:
    """The attempts left to one request under a retry policy."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None]) -> None:
        self._policy = policy
        self._sleep = sleep
        self._attempt = 0

    def again(self, retry_after: float | None = None) -> bool:
        """Whether another attempt is left; if so, wait before it."""
        if self._attempt + 1 >= self._policy.attempts:
            return False
        self._sleep(self._policy.delay(self._attempt, retry_after))
        self._attempt += 1
        return True


def _forgotten(response: httpx.Response, error: EhrgateError) -> bool:
    """Whether the gateway refused the token as unknown or expired."""
    return response.status_code == 401 and error.problem_type == problems.INVALID_TOKEN.uri


def _retry_after(response: httpx.Response) -> float | None:
    with contextlib.suppress(ValueError):
        return float(response.headers.get("retry-after", ""))
    return None


def _with_context(error: EhrgateError, path: str) -> EhrgateError:
    if isinstance(error, AuthenticationFailed) and path.startswith("/v1/auth/"):
        error.message = f"login refused: {error.message}"
        error.args = (error.message,)
    if isinstance(error, RateLimited) and error.retry_after:
        error.message += f" (retry after {error.retry_after:g} s)"
        error.args = (error.message,)
    return error
