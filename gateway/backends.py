"""The gateway's backing services: the ledger database and the blob stores.

`open_backends(settings)` connects them inside the application's lifespan and
`Backends.close()` releases them; `Backends.readiness()` answers `/readyz`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from gateway.auth import IdentityDirectory
from gateway.settings import Settings

log = logging.getLogger("gateway.backends")

ReadinessCheck = Callable[[], None]


@dataclass
class Backends:
    """Connected services of one running gateway."""

    engine: sa.Engine
    directory: IdentityDirectory | None = None
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)

    def readiness(self) -> dict[str, str]:
        """Name of each service → "ok" or a short reason it is not."""
        report: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
            except Exception as exc:  # each check's failure is reported, never raised
                log.warning("readiness check %s failed: %s", name, exc)
                report[name] = f"unavailable: {type(exc).__name__}"
            else:
                report[name] = "ok"
        return report

    def close(self) -> None:
        self.engine.dispose()


def _database_check(engine: sa.Engine) -> ReadinessCheck:
    def check() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    return check


def _directory_store_check(root: Path) -> ReadinessCheck:
    def check() -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a directory")

    return check


def open_backends(settings: Settings) -> Backends:
    """Connect to the database and stores named by *settings*."""
    url = sa.make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    backends = Backends(engine=engine)
    backends.checks["database"] = _database_check(engine)
    for index, store_url in enumerate(settings.store_urls):
        parts = urlsplit(store_url)
        if parts.scheme == "file":
            root = Path(unquote(parts.path))
            root.mkdir(parents=True, exist_ok=True)
            backends.checks[f"store{index}"] = _directory_store_check(root)
    return backends
