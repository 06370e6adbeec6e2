"""FastAPI dependencies shared by the routes: state, backends, the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.auth import Authenticator, IdentityDirectory, Principal
from gateway.backends import Backends
from gateway.clock import Clock
from gateway.errors import Forbidden, InvalidToken, ServiceUnavailable
from gateway.metrics import GatewayMetrics
from gateway.settings import Settings


@dataclass
class GatewayState:
    """Everything one application instance owns; kept on `app.state.gateway`."""

    settings: Settings
    clock: Clock
    metrics: GatewayMetrics
    authenticator: Authenticator
    backends: Backends | None = None


def get_state(request: Request) -> GatewayState:
    state: GatewayState = request.app.state.gateway
    return state


StateDep = Annotated[GatewayState, Depends(get_state)]


def get_backends(state: StateDep) -> Backends:
    if state.backends is None:
        raise ServiceUnavailable("the gateway is starting or stopping")
    return state.backends


BackendsDep = Annotated[Backends, Depends(get_backends)]


def get_directory(backends: BackendsDep) -> IdentityDirectory:
    if backends.directory is None:
        raise ServiceUnavailable("the ledger is not open")
    return backends.directory


DirectoryDep = Annotated[IdentityDirectory, Depends(get_directory)]

_bearer = HTTPBearer(auto_error=False, description="A token from POST /v1/auth/token.")


def get_principal(
    state: StateDep,
    directory: DirectoryDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise InvalidToken("send 'Authorization: Bearer <token>' from POST /v1/auth/token")
    return state.authenticator.authenticate(credentials.credentials, directory=directory)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that admits only principals of one of *roles*."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this route is for {' or '.join(roles)} identities")
        return principal

    return check


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
