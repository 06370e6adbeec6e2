"""The verification source that reads a ledger database (read-only); the one for exported
JSON, which needs no database, is `ledger.exported.ExportSource`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import sqlalchemy as sa

from ledger import database, schema
from ledger.state import Row
from ledger.verify import SourceEntry
from ledger.wire.blocks import Block


class DatabaseSource:
    """Reads a ledger database directly (read-only), with its stored state and leaf hashes."""

    def __init__(self, url: str, *, page: int = 5000) -> None:
        self.engine = database.open_engine(url)
        self.page = page
        e, n = schema.entries.name, schema.nodes.name
        self._page_query = sa.text(
            f"SELECT e.idx, e.block_height, e.tx, n.hash FROM {e} e "
            f"LEFT OUTER JOIN {n} n ON n.level = 0 AND n.idx = e.idx "
            "WHERE e.idx >= :position ORDER BY e.idx LIMIT :page"
        )
        c = schema.capsules.name
        self._capsule_query = sa.text(
            f"SELECT sha256, data FROM {c} WHERE sha256 > :after ORDER BY sha256 LIMIT :page"
        )

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> DatabaseSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entry_count(self) -> int | None:
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.entries)).scalar_one()
            )

    def head(self) -> tuple[int, int] | None:
        with self.engine.connect() as conn:
            return database.read_head(conn)

    def entries(self) -> Iterator[SourceEntry]:
        position = 0
        with self.engine.connect() as conn:
            while True:
                # The leaf hash is read from the tree's node table, an independent witness:
                # an entry edited or moved in ledger_entries no longer matches it.
                # Plain text SQL: untyped columns skip SQLAlchemy's per-value processing,
                # which would cost more than the hashing this page is read for.
                rows = conn.execute(self._page_query, {"position": position, "page": self.page})
                last = None
                for idx, height, tx, leaf in rows:
                    yield SourceEntry(
                        idx, height, bytes(tx), bytes(leaf) if leaf is not None else b""
                    )
                    last = idx
                if last is None:
                    return
                position = int(last) + 1

    def blocks(self) -> Iterator[Block]:
        with self.engine.connect() as conn:
            yield from database.iter_blocks(conn, page=self.page)

    def state_tables(self) -> Mapping[str, Iterable[Row]] | None:
        with self.engine.connect() as conn:
            return {
                table: list(database.iter_state_rows(conn, table)) for table in schema.STATE_TABLES
            }

    def capsules(self) -> Iterator[tuple[str, bytes]]:
        """The stored capsules (key, bytes) in key order, a page of rows at a time."""
        after = ""
        page = max(1, self.page // 10)  # capsules are kilobytes, entries a few hundred bytes
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(self._capsule_query, {"after": after, "page": page}).all()
                for key, data in rows:
                    yield str(key), bytes(data)
                if len(rows) < page:
                    return
                after = str(rows[-1][0])
