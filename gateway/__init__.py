"""The HTTP gateway: authentication, permission enforcement, audit and proofs.

`create_app(settings)` builds the FastAPI application; `Settings` reads `EHRGATE_*`
variables. Nothing is built or connected at import time.
"""

from gateway.app import create_app
from gateway.auth import AUTH_PURPOSE, IdentityDirectory, Principal, auth_statement
from gateway.errors import GatewayError
from gateway.settings import Settings

__all__ = [
    "AUTH_PURPOSE",
    "GatewayError",
    "IdentityDirectory",
    "Principal",
    "Settings",
    "auth_statement",
    "create_app",
]
