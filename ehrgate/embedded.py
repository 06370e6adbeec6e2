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
def embedded_gateway(data_dir: Path, **settings: Any) -> Iterator[EmbeddedGateway]:
    """Start a gateway on a free loopback port with its data in *data_dir* (SQLite and
    local blobs unless *settings* say otherwise); stop it on exit."""
    import uvicorn

    from gateway import Settings, create_app
    from gateway.bootstrap import FIRST_ADMIN_FILE, ensure_first_start

    port = free_port()
    config_values: dict[str, Any] = {"log_level": "warning", **settings}
    config_values.update(data_dir=data_dir, host="127.0.0.1", port=port)
    gateway_settings = Settings(**config_values)
    ensure_first_start(gateway_settings)
    admin = load_key_file(data_dir / FIRST_ADMIN_FILE)
    assert isinstance(admin, IdentityKeys)
    config = uvicorn.Config(
        create_app(gateway_settings),
        host="127.0.0.1",
        port=port,
        log_level=gateway_settings.log_level,
        lifespan="on",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"gateway-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the embedded gateway stopped while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the embedded gateway did not start within {START_TIMEOUT:g} s")
        time.sleep(0.01)
    try:
        yield EmbeddedGateway(f"http://127.0.0.1:{port}", data_dir, admin)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
