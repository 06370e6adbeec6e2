"""The PostgreSQL scratch database really is PostgreSQL and really is empty."""

from __future__ import annotations

import sqlalchemy as sa


def test_scratch_database_is_an_empty_postgresql_database(fresh_postgres_url: str) -> None:
    engine = sa.create_engine(fresh_postgres_url)
    with engine.connect() as conn:
        assert conn.dialect.name == "postgresql"
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
