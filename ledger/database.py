"""Database access for the ledger: engines, the writer lock, and reads of log and state.

SQLite runs in WAL mode with ``synchronous=FULL``: a receipt promises that its entry is
durable, and in WAL mode ``NORMAL`` may lose the last commits on power failure. Group commit
pays the fsync once per batch, so FULL costs little. Writers take the database's write lock
up front (``BEGIN IMMEDIATE``); on PostgreSQL they lock the single `ledger_head` row
(``SELECT ... FOR UPDATE``). Either way only one writer at a time extends the log, and it
first checks that the head it extends is the one it knows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ledger import schema
from ledger.errors import SchemaMissing
from ledger.merkle import Node
from ledger.state import RESIDENT_TABLES, Row, State
from ledger.wire.blocks import Block, Entry
from ledger.wire.transactions import Transaction

SQLITE_SYNCHRONOUS = "FULL"


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the ledger's connection settings for SQLite or PostgreSQL."""
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        # Wait up to 30 s for another process's write lock, unless the URL sets the
        # driver's own `timeout` (seconds): then a held lock fails sooner, as
        # LedgerUnavailable, and a gateway can answer 503 instead of hanging.
        lock_wait = "" if "timeout" in engine.url.query else "PRAGMA busy_timeout=30000"

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below emit BEGIN IMMEDIATE, not pysqlite.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
            if lock_wait:
                cursor.execute(lock_wait)
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # Writers take the write lock at BEGIN, so two never both read the same head.
            write = connection.get_execution_options().get("ledger_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def snapshot(conn: Connection) -> Connection:
    """*conn* set to read one consistent snapshot in its next transaction.

    Loading the state reads several tables and then the head. On PostgreSQL's default READ
    COMMITTED each statement sees the commits made before it, so a writer committing in
    between would leave state tables from before its entries under a head after them, and
    this process would never read those entries (it believes it has them). REPEATABLE READ
    makes every statement of the transaction see the same snapshot. SQLite's read
    transactions (BEGIN, above) are snapshots already.
    """
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def open_engine(url: str) -> Engine:
    """`create_engine`, after checking that the database has the ledger's schema."""
    engine = create_engine(url)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def check_schema(engine: Engine) -> None:
    inspector = sa.inspect(engine)
    missing = [t.name for t in schema.metadata.sorted_tables if not inspector.has_table(t.name)]
    if missing:
        raise SchemaMissing(
            f"the database has no ledger tables ({', '.join(missing)}); create them with "
            "`alembic upgrade head` (or Ledger.open(..., create_schema=True))"
        )


def lock_head(conn: Connection) -> tuple[int, int]:
    """Lock the head row for this transaction; returns (height, tree_size)."""
    # Plain SQL, run once per group commit: no statement to build and cache-key each time.
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    row = conn.exec_driver_sql(
        f"SELECT height, tree_size FROM {schema.head.name} WHERE id = 1{lock}"
    ).first()
    if row is None:
        raise SchemaMissing("the ledger_head row is missing; run `alembic upgrade head`")
    return int(row[0]), int(row[1])


def move_head(conn: Connection, expected_size: int, height: int, tree_size: int) -> bool:
    """Set the head to (*height*, *tree_size*) if it still has *expected_size* entries."""
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    result = conn.exec_driver_sql(
        f"UPDATE {schema.head.name} SET height = {marker}, tree_size = {marker} "
        f"WHERE id = 1 AND tree_size = {marker}",
        (height, tree_size, expected_size),
    )
    return result.rowcount == 1


def read_head(conn: Connection) -> tuple[int, int]:
    row = conn.execute(
        sa.select(schema.head.c.height, schema.head.c.tree_size).where(schema.head.c.id == 1)
    ).one_or_none()
    if row is None:
        raise SchemaMissing("the ledger_head row is missing; run `alembic upgrade head`")
    return int(row.height), int(row.tree_size)


def block_from_row(row: Any) -> Block:
    return Block(
        int(row.height),
        bytes(row.previous_hash),
        int(row.tree_size),
        bytes(row.root),
        row.timestamp,
        bytes(row.signature),
    )


def read_block(conn: Connection, height: int) -> Block | None:
    row = conn.execute(sa.select(schema.blocks).where(schema.blocks.c.height == height)).first()
    return None if row is None else block_from_row(row)


def read_nodes(conn: Connection, wanted: Sequence[Node]) -> dict[Node, bytes]:
    if not wanted:
        return {}
    t = schema.nodes
    found: dict[Node, bytes] = {}
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), 400):
        chunk = unique[start : start + 400]
        # An OR of primary-key probes (a row-value IN makes SQLite scan), written with the
        # integers inline: they are ints, and a statement of varying shape would defeat
        # SQLAlchemy's compiled cache on every proof.
        where = " OR ".join(f"(level = {int(lv)} AND idx = {int(i)})" for lv, i in chunk)
        rows = conn.exec_driver_sql(f"SELECT level, idx, hash FROM {t.name} WHERE {where}")
        for level, idx, value in rows:
            found[(int(level), int(idx))] = bytes(value)
    return found


def iter_entries(
    conn: Connection, start: int = 0, stop: int | None = None, *, page: int = 5000
) -> Iterator[tuple[int, int, bytes, bytes]]:
    """(index, block height, canonical tx bytes, stored leaf hash), in index order."""
    t = schema.entries
    position = start
    while stop is None or position < stop:
        limit = page if stop is None else min(page, stop - position)
        rows = conn.execute(
            sa.select(t.c.idx, t.c.block_height, t.c.tx, t.c.leaf_hash)
            .where(t.c.idx >= position)
            .order_by(t.c.idx)
            .limit(limit)
        ).all()
        if not rows:
            return
        for idx, height, tx, leaf in rows:
            yield int(idx), int(height), bytes(tx), bytes(leaf)
        position = int(rows[-1][0]) + 1


def iter_blocks(conn: Connection, *, page: int = 5000) -> Iterator[Block]:
    t = schema.blocks
    position = 0
    while True:
        rows = conn.execute(
            sa.select(t).where(t.c.height >= position).order_by(t.c.height).limit(page)
        ).all()
        if not rows:
            return
        for row in rows:
            yield block_from_row(row)
        position = int(rows[-1].height) + 1


def read_entries(conn: Connection, start: int, limit: int) -> list[Entry]:
    return [
        Entry(index, height, Transaction.from_bytes(tx))
        for index, height, tx, _ in iter_entries(conn, start, start + limit)
    ]


def normalise(table: str, row: Any) -> Row:
    """A state row as plain Python values, the same on SQLite and PostgreSQL."""
    values = dict(row._mapping)
    for column in schema.STATE_TABLES[table].columns:
        value = values[column.name]
        if value is not None and isinstance(column.type, sa.BigInteger | sa.SmallInteger):
            values[column.name] = int(value)
    return values


def iter_state_rows(conn: Connection, table: str) -> Iterator[Row]:
    t = schema.STATE_TABLES[table]
    for row in conn.execute(sa.select(t)):
        yield normalise(table, row)


def load_state(conn: Connection, state: State, *, resident_only: bool = True) -> None:
    """Fill *state* from the state tables and the used transaction ids."""
    for table in schema.STATE_TABLES:
        if resident_only and table not in RESIDENT_TABLES:
            continue
        for row in iter_state_rows(conn, table):
            state.load_row(table, row)
    for (tx_id,) in conn.execute(sa.select(schema.entries.c.tx_id)):
        state.tx_ids.add(tx_id)


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """INSERT rows through the driver's executemany, skipping SQLAlchemy's per-row work:
    the log's rows are plain ints, strings and bytes, and there are many per batch."""
    if not rows:
        return
    columns = tuple(rows[0])
    insert_tuples(conn, table, columns, [tuple(row[c] for c in columns) for row in rows])


def insert_tuples(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT *rows* (values in the order of *columns*) with one executemany."""
    if not rows:
        return
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(marker for _ in columns)})"
    )
    conn.exec_driver_sql(statement, rows)


def write_state_rows(
    conn: Connection, inserts: dict[str, list[Row]], updates: dict[str, list[Row]]
) -> None:
    for table, rows in inserts.items():
        # The rules write whole rows (every column, plain values), as insert_many needs.
        insert_many(conn, schema.STATE_TABLES[table], rows)
    for table, rows in updates.items():
        if not rows:
            continue
        t = schema.STATE_TABLES[table]
        keys = [c.name for c in t.primary_key.columns]
        statement = (
            t.update()
            .where(sa.and_(*(t.c[k] == sa.bindparam(f"key_{k}") for k in keys)))
            .values({c.name: sa.bindparam(f"new_{c.name}") for c in t.columns})
        )
        conn.execute(
            statement,
            [
                {**{f"key_{k}": row[k] for k in keys}, **{f"new_{c}": v for c, v in row.items()}}
                for row in rows
            ],
        )


def delete_capsules(conn: Connection, sha256s: set[str]) -> None:
    """Delete capsule rows (those a rekey superseded)."""
    if sha256s:
        t = schema.capsules
        conn.execute(t.delete().where(t.c.sha256.in_(sorted(sha256s))))


def insert_capsules(conn: Connection, capsules: dict[str, bytes]) -> None:
    if not capsules:
        return
    t = schema.capsules
    existing = {
        sha for (sha,) in conn.execute(sa.select(t.c.sha256).where(t.c.sha256.in_(list(capsules))))
    }
    rows = [{"sha256": k, "data": v} for k, v in capsules.items() if k not in existing]
    if rows:
        conn.execute(t.insert(), rows)
