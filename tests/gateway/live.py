"""A gateway served by real uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from ehrgate.embedded import serve_app
from gateway import Settings, create_app
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World
from tests.ports import free_port


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run *app* (with its lifespan) on a free loopback port; yield its base URL."""
    with serve_app(app, free_port(), "uvicorn", timeout=20) as url:
        yield url


@contextmanager
def live_world(settings: Settings, clock: ManualClock) -> Iterator[tuple[str, World]]:
    """A live gateway of *settings* and the actors of its first admin, over real HTTP."""
    with (
        serve_in_thread(create_app(settings, clock=clock)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield url, World(client, clock, first_admin(settings))
