"""`ehrgate serve --workers N`: N processes on one port sharing the ledger and auth state;
refused on SQLite; SIGTERM lets an upload in flight finish before the processes exit."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from envelope import seal
from ledger.wire.clock import format_time
from tests.faults.gateway_client import Actor, enroll, grant, now, register_patient
from tests.faults.harness import ROOT
from tests.ports import free_port
from tests.postgres import scratch_database
from tests.processes import kill_group, log_tail


def test_workers_on_sqlite_are_refused_with_a_usage_error(tmp_path: Path) -> None:
    from ehrgate.cli import cli

    result = CliRunner().invoke(
        cli,
        ["serve", "--workers", "2", "--data-dir", str(tmp_path)],
        env={"EHRGATE_DATABASE_URL": None, "EHRGATE_AUTH_STATE": None},
    )
    assert result.exit_code == 2
    assert "--workers above 1 needs the ledger on PostgreSQL" in result.output
    assert not (tmp_path / "ledger.db").exists(), "nothing is written before the refusal"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with scratch_database("ehrgate_workers") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "EHRGATE_DATABASE_URL": url,
                "EHRGATE_LOG_LEVEL": "warning",
                "EHRGATE_AUTH_RATE_LIMIT": "100000",
            }
        )
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "ehrgate", "serve", "--workers", "2", "--port", str(port),
                 "--data-dir", str(tmp_path / "data")],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_tail(log_path)
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log_tail(log_path)
                time.sleep(0.1)
            yield base, process, tmp_path / "data"
        finally:
            kill_group(process)


def test_workers_share_tokens_and_challenges_and_finish_uploads_on_sigterm(
    two_workers: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    from envelope import IdentityKeys, load_key_file

    base, process, data_dir = two_workers
    deadline = time.monotonic() + 30
    while len(_children(process.pid)) < 2:  # uvicorn's manager and its two workers
        assert time.monotonic() < deadline, _children(process.pid)
        time.sleep(0.1)
    admin_keys = load_key_file(data_dir / "admin.key")
    assert isinstance(admin_keys, IdentityKeys)
    with httpx.Client(base_url=base, timeout=30) as client:
        admin = Actor(client, admin_keys)
        uploader = enroll(admin, "dr-workers", "clinician")
        patient = register_patient(admin, "Worker Patient")
        grant(Actor(client, patient.identity), patient.pseudonym, uploader.id, ["write"])
    # Each step on a new connection, so the kernel spreads them over both workers: a
    # challenge from one is redeemed at the other, and tokens work at both.
    for _ in range(8):
        with httpx.Client(base_url=base, timeout=30) as fresh:
            actor = Actor(fresh, uploader)
            actor.request("GET", "/v1/identities/me")
            assert actor.token is not None
            token = actor.token
        for _ in range(3):
            with httpx.Client(base_url=base, timeout=30) as fresh:
                response = fresh.get(
                    "/v1/identities/me", headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text

    # A slow upload in flight when SIGTERM arrives still completes.
    body = io.BytesIO()
    sealed = seal(
        io.BytesIO(b"%PDF-1.7\n" + os.urandom(400_000)),
        body,
        recipients=[(patient.pseudonym, patient.patient_key.record_public_key())],
        filename="slow.pdf",
        content_type="application/pdf",
        pseudonym=patient.pseudonym,
        category="lab-results",
        created_at=format_time(now()),
        uploader_id=uploader.id,
        signer=uploader,
    )
    data = body.getvalue()
    started = threading.Event()

    def slowly() -> Iterator[bytes]:
        for offset in range(0, len(data), 40_000):
            yield data[offset : offset + 40_000]
            started.set()
            time.sleep(0.15)

    with httpx.Client(base_url=base, timeout=60) as client:
        actor = Actor(client, uploader)
        actor.request("GET", "/v1/identities/me")
        outcome: dict[str, httpx.Response] = {}

        def send() -> None:
            outcome["response"] = client.post(
                "/v1/blobs",
                content=slowly(),
                params={"pseudonym": patient.pseudonym, "category": "lab-results",
                        "sha256": sealed.body_sha256},
                headers={"Authorization": f"Bearer {actor.token}",
                         "Content-Type": "application/octet-stream"},
            )  # fmt: skip

        sender = threading.Thread(target=send)
        sender.start()
        assert started.wait(30)
        time.sleep(0.3)
        os.kill(process.pid, signal.SIGTERM)
        sender.join(60)
    response = outcome["response"]
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == sealed.body_sha256
    assert process.wait(timeout=60) == 0
