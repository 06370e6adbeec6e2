"""Alembic environment: runs migrations online against the configured database URL.

The URL comes from the Alembic config (`ledger.migrate` sets it) or, when run as
`alembic -c alembic.ini upgrade head`, from the EHRGATE_DATABASE_URL environment variable.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from gateway.schema import metadata as gateway_metadata
from ledger.schema import metadata as ledger_metadata

config = context.config
# The ledger's tables and those the gateway keeps beside them, in one database.
metadata = [ledger_metadata, gateway_metadata]


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("EHRGATE_DATABASE_URL")
    if not url:
        raise RuntimeError("set EHRGATE_DATABASE_URL to the database to migrate")
    return url


url = _database_url()


def run_migrations_online() -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
