"""The Alembic migrations build the schema on both databases, with no drift from the code."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway import schema as gateway_schema
from ledger import schema
from ledger.migrate import upgrade


def _combined() -> sa.MetaData:
    """The ledger's tables and the gateway's, in one MetaData as Alembic compares them."""
    combined = sa.MetaData(naming_convention=schema.NAMING_CONVENTION)
    for table in _all_tables():
        table.to_metadata(combined)
    return combined


def _all_tables() -> list[sa.Table]:
    return [*schema.metadata.sorted_tables, *gateway_schema.metadata.sorted_tables]


def test_upgrade_head_builds_the_schema_without_drift(database_url: str) -> None:
    upgrade(database_url)  # a second upgrade to head is a no-op
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            drift = compare_metadata(context, _combined())
            head = conn.execute(sa.select(schema.head)).all()
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert drift == [], f"the migrations and ledger.schema differ: {drift}"
    assert [tuple(r) for r in head] == [(1, -1, 0)]
    assert version == "0010"


def test_upgrade_from_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {t.name for t in _all_tables()} <= names


def test_upgrade_from_empty_postgres(fresh_postgres_url: str) -> None:
    upgrade(fresh_postgres_url)
    engine = sa.create_engine(fresh_postgres_url)
    try:
        inspector = sa.inspect(engine)
        names = set(inspector.get_table_names())
        unique = inspector.get_unique_constraints("ledger_entries")
    finally:
        engine.dispose()
    assert {t.name for t in _all_tables()} <= names
    # The naming convention gives constraints stable names migrations can refer to.
    assert [u["name"] for u in unique] == ["uq_ledger_entries_tx_id"]


def test_log_tables_have_no_update_or_delete_in_the_code() -> None:
    import ledger

    package = Path(ledger.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text()
        for table in ("entries", "blocks", "nodes"):
            for verb in ("update", "delete"):
                assert f"schema.{table}.{verb}(" not in text, f"{source.name}: {table}.{verb}"


def test_the_pure_state_tables_match_the_database_schema() -> None:
    from ledger import state_tables

    assert list(schema.STATE_TABLES) == list(state_tables.STATE_TABLES)
    for name, table in schema.STATE_TABLES.items():
        pure = state_tables.STATE_TABLES[name]
        assert table.name == pure.table, name
        assert tuple(c.name for c in table.columns) == pure.columns, name
        assert tuple(c.name for c in table.primary_key.columns) == pure.key, name
    state_names = {t.table for t in state_tables.STATE_TABLES.values()}
    declared = {t.name for t in schema.metadata.sorted_tables if t.name.startswith("state_")}
    assert declared == state_names


def test_0002_lets_access_events_name_no_patient(tmp_path: Path) -> None:
    from alembic import command

    from ledger.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0001")
    row = {
        "entry_index": 1,
        "actor": "dr-x",
        "action": "body",
        "record_id": None,
        "category": None,
        "decision": "allowed",
        "reason": "read right",
        "at": "2030-01-01T00:00:00.000000Z",
    }
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(schema.access_events.insert(), {**row, "pseudonym": "ab" * 32})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                schema.access_events.insert(), {**row, "entry_index": 2, "pseudonym": None}
            )
        upgrade(url)
        with engine.begin() as conn:
            conn.execute(
                schema.access_events.insert(), {**row, "entry_index": 2, "pseudonym": None}
            )
            kept = (
                conn.execute(sa.select(schema.access_events.c.pseudonym).order_by("entry_index"))
                .scalars()
                .all()
            )
        assert kept == ["ab" * 32, None]
        # Going back would have to drop the rows that name no patient: refused.
        with pytest.raises(RuntimeError, match="name no patient"):
            command.downgrade(alembic_config(url), "0001")
    finally:
        engine.dispose()
