"""A gateway served by real uvicorn on 127.0.0.1 in a background thread (demo and tests).

with embedded_gateway(tmp_path / "gateway") as gateway:
    admin = gateway.admin          # the first admin's keys, made on first start
    Client(gateway.url, admin).enroll(...)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envelope import IdentityKeys, load_key_file

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class EmbeddedGateway:
    url: str
    data_dir: Path
    admin: IdentityKeys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_app(
    app: Any, port: int, what: str, *, log_level: str = "warning", timeout: float = START_TIMEOUT
) -> Iterator[str]:
    """Serve the ASGI *app* (lifespan on) with uvicorn on 127.0.0.1:*port* in a daemon
    thread; yield its base URL once it listens; stop it on exit. *what* names it in errors."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level=log_level, lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{what} stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"{what} did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def embedded_gateway(data_dir: Path, **settings: Any) -> Iterator[EmbeddedGateway]:
    """Start a gateway on a free loopback port with its data in *data_dir* (SQLite and
    local blobs unless *settings* say otherwise); stop it on exit."""
    from gateway import Settings, create_app
    from gateway.bootstrap import FIRST_ADMIN_FILE, ensure_first_start

    port = free_port()
    config_values: dict[str, Any] = {"log_level": "warning", **settings}
    config_values.update(data_dir=data_dir, host="127.0.0.1", port=port)
    gateway_settings = Settings(**config_values)
    ensure_first_start(gateway_settings)
    admin = load_key_file(data_dir / FIRST_ADMIN_FILE)
    assert isinstance(admin, IdentityKeys)
    app = create_app(gateway_settings)
    with serve_app(app, port, "the embedded gateway", log_level=gateway_settings.log_level) as url:
        yield EmbeddedGateway(url, data_dir, admin)
