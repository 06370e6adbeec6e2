"""A private PostgreSQL server for tests that stop and start it (never the shared one).

    with PrivatePostgres.start() as server:
        url = server.create_database("ledger")
        server.stop()        # immediate: like a crash, recovery runs on the next start
        server.restart()

The cluster is created with ``initdb`` in a temporary directory (owned by the ``postgres``
user when the tests run as root, since PostgreSQL refuses to run as root), listens on a
free port of 127.0.0.1 only, keeps its Unix socket in that directory, trusts local
connections, and is removed at the end.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.ports import free_port


def postgres_bin_dir() -> Path:
    """The directory of `initdb`/`pg_ctl` (Debian keeps them off PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, Path(found).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise RuntimeError("initdb and pg_ctl were not found; install the postgresql package")


@dataclass
class PrivatePostgres:
    bin_dir: Path
    base: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_path(self) -> Path:
        return self.base / "server.log"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = list(command)
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                f"{result.stderr}\n{self._log_tail()}"
            )
        return result

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[PrivatePostgres]:
        base = Path(tempfile.mkdtemp(prefix="ehrgate-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(base, owner.pw_uid, owner.pw_gid)
        server = cls(postgres_bin_dir(), base, free_port())
        try:
            server._run(
                str(server.bin_dir / "initdb"), "-D", str(server.data_dir), "-U", "postgres",
                "-A", "trust", "--no-sync", "-E", "UTF8",
            )  # fmt: skip
            server.restart()
            yield server
        finally:
            with suppress(Exception):
                server.stop(mode="immediate")
            shutil.rmtree(base, ignore_errors=True)

    def restart(self) -> None:
        """Start the server (after `stop`); returns once it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
            "-c shared_buffers=16MB -c max_connections=40 -c fsync=on"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server; `immediate` aborts every backend like a crash would."""
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop",
            check=False,
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                    break
                except sa.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            engine.dispose()
        return self.url(name)
