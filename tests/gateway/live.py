"""A gateway served by real uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from gateway import Settings, create_app
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, World
from tests.ports import free_port


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run *app* (with its lifespan) on a free loopback port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped while starting")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 20 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def live_world(settings: Settings, clock: ManualClock) -> Iterator[tuple[str, World]]:
    """A live gateway of *settings* and the actors of its first admin, over real HTTP."""
    with (
        serve_in_thread(create_app(settings, clock=clock)) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield url, World(client, clock, first_admin(settings))
