"""FastAPI dependencies shared by the routes: state, backends, the authenticated principal.

They are `async def` on purpose: each does in-memory work only, and FastAPI would run a
plain `def` dependency in the thread pool, a hop that costs more than the work. The one
exception is a token lookup in a shared authentication state, which waits for the database
and so goes to the thread pool itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from anyio.from_thread import BlockingPortal
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gateway.auth import Authenticator, IdentityDirectory, Principal
from gateway.backends import Backends
from gateway.clock import Clock
from gateway.errors import Forbidden, InvalidToken, ServiceUnavailable
from gateway.events import EventHub
from gateway.metrics import GatewayMetrics
from gateway.notify.worker import Notifier
from gateway.refusal_limits import RefusalLimiter
from gateway.settings import Settings


@dataclass
class GatewayState:
    """Everything one application instance owns; kept on `app.state.gateway`."""

    settings: Settings
    clock: Clock
    metrics: GatewayMetrics
    authenticator: Authenticator
    refusals: RefusalLimiter
    events: EventHub = field(default_factory=EventHub)
    backends: Backends | None = None
    portal: BlockingPortal | None = None
    notifier: Notifier | None = None


async def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]


async def get_backends(request: Request) -> Backends:
    backends: Backends | None = request.app.state.gateway.backends
    if backends is None:
        raise ServiceUnavailable("the gateway is starting or stopping")
    return backends


BackendsDep = Annotated[Backends, Depends(get_backends)]


def get_portal(state: GatewayState) -> BlockingPortal:
    """The portal through which worker threads read request bodies from the event loop."""
    if state.portal is None:
        raise ServiceUnavailable("the gateway is starting or stopping")
    return state.portal


def directory_of(backends: Backends) -> IdentityDirectory:
    return backends.directory


_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token.")


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: who calls, and the gateway's state and backends."""

    principal: Principal
    state: GatewayState
    backends: Backends


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    # One dependency hands a route everything it needs: this runs on every authenticated
    # request, and each further dependency costs more than the lookups themselves.
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("send 'Authorization: Bearer <token>' from POST /v1/auth/token")
    state: GatewayState = request.app.state.gateway
    backends = await get_backends(request)
    authenticator = state.authenticator
    token, client = credentials.credentials, client_address(request)
    directory = directory_of(backends)
    if authenticator.blocking:  # one database round trip: off the event loop
        principal = await run_in_threadpool(
            authenticator.authenticate, token, directory=directory, client=client
        )
    else:
        principal = authenticator.authenticate(token, directory=directory, client=client)
    return Caller(principal, state, backends)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_role(*roles: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits only callers of one of *roles*."""

    async def check(caller: CallerDep) -> Caller:
        if caller.principal.role not in roles:
            raise Forbidden(f"this route is for {' or '.join(roles)} identities")
        return caller

    return check


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
