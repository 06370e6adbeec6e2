"""Fixtures of the fault-injection suite, and the figures it prints at the end of a run."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import Settings, create_app
from ledger.migrate import upgrade
from tests.faults.settings import fault_kills, fault_seed
from tests.gateway.conftest import first_admin
from tests.gateway.helpers import ManualClock, TestClient, World
from tests.postgres import scratch_database

#: Totals the tests add to (kills survived, acknowledged operations verified, ...), printed
#: in the terminal summary so that a long run's figures can be quoted.
FIGURES: Counter[str] = Counter()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty ledger database of each kind (PostgreSQL on the shared server:
    only its client processes are killed, never the server)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
        upgrade(url)
        yield url
    else:
        with scratch_database("ehrgate_faults") as url:
            upgrade(url)
            yield url


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for the disk-full test needs root")
    mount_point = Path(tempfile.mkdtemp(prefix="ehrgate-full-"))
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"mount -t tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


@pytest.fixture
def gateway_world(tmp_path: Path) -> Iterator[World]:
    """An in-process gateway (embedded SQLite, local blobs) on a clock the test moves."""
    settings = Settings(data_dir=tmp_path / "data")
    clock = ManualClock()
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        yield World(client, clock, first_admin(settings))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault injection figures")
    terminalreporter.write_line(
        f"seed {fault_seed()}, kills per crash test and database {fault_kills()}"
    )
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")
