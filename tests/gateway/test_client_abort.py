"""A client that hangs up in the middle of an upload is an abort, not a gateway failure."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from gateway import Settings
from tests.gateway import scenario
from tests.gateway.helpers import ManualClock, metrics_text
from tests.gateway.live import live_world

DECLARED = 8 * 1024 * 1024
SENT = 3 * 1024 * 1024 + 17


def _send_part_and_hang_up(url: str, target: str, content_type: str, token: str) -> None:
    """Send the headers and part of the declared body over a raw socket, then close it."""
    address = urlsplit(url)
    head = (
        f"POST {target} HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    ).encode()
    assert address.hostname is not None
    assert address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head + b"%PDF-1.7\n" + bytes(SENT))


def _closed_count(client: httpx.Client, route: str) -> float:
    line = f'ehrgate_http_requests_total{{method="POST",route="{route}",status="499"}} '
    for row in metrics_text(client).splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


def _files_under(path: Path) -> list[Path]:
    return [item for item in path.rglob("*") if item.is_file()] if path.exists() else []


def test_an_upload_cut_short_by_the_client_is_counted_as_closed_not_as_an_error(
    tmp_path: Path,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with live_world(settings, clock) as (url, world):
        client = world.client
        cast = scenario.set_up(world)
        world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
        token = world.headers(cast.system)["Authorization"].split()[1]
        stored_before = _files_under(settings.data_dir / "blobs")
        uploads = {
            "/v1/blobs": (
                f"/v1/blobs?pseudonym={cast.patient.pseudonym}&category=lab-results",
                "application/octet-stream",
            ),
            "/v1/documents": (
                f"/v1/documents?pseudonym={cast.patient.pseudonym}"
                "&category=lab-results&filename=cut.pdf",
                "application/pdf",
            ),
        }
        with caplog.at_level(logging.INFO):
            for route, (target, content_type) in uploads.items():
                _send_part_and_hang_up(url, target, content_type, token)
                deadline = time.monotonic() + 20
                while _closed_count(client, route) < 1:
                    assert time.monotonic() < deadline, f"the abort on {route} was not counted"
                    time.sleep(0.05)
            text = metrics_text(client)
        assert 'status="500"' not in text
        assert _files_under(settings.data_dir / "blobs") == stored_before
    closed = [r for r in caplog.records if "client closed the connection" in r.getMessage()]
    assert len(closed) == 2
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err
