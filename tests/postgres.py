"""A throw-away PostgreSQL database per test session, on the server the suite is pointed at.

The server is 127.0.0.1:5432 with trust authentication unless EHRGATE_TEST_POSTGRES_URL
names another (a SQLAlchemy URL to an existing database with the right to CREATE DATABASE).
Tests that need it fail, never skip, when it cannot be reached: CI must run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def admin_url() -> str:
    return os.environ.get("EHRGATE_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


@contextmanager
def scratch_database(prefix: str = "ehrgate_test") -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    url = make_url(admin_url())
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        raise RuntimeError(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)}: "
            "start it (see .ci/run) or set EHRGATE_TEST_POSTGRES_URL"
        ) from exc
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
