"""Rebuild a ledger database's state tables from its log."""

from __future__ import annotations

from ledger import database, schema
from ledger.categories import CategoryRegistry
from ledger.errors import LedgerError
from ledger.sources import DatabaseSource
from ledger.verify import VerifyReport, verify


def replay_database(url: str, *, categories: CategoryRegistry | None = None) -> VerifyReport:
    """Replay the whole log of the database at *url* and replace its state tables with the
    result, under the writer lock. The log must verify first (except the state itself, which
    is what gets replaced); otherwise nothing is written and the report names the damage."""
    engine = database.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(ledger_write=True)
            with conn.begin():
                database.lock_head(conn)
                with DatabaseSource(url) as source:
                    report = verify(_WithoutState(source), categories=categories)
                if not report.ok:
                    conn.rollback()
                    return report
                state = report.state
                if state is None:
                    raise LedgerError("the replay produced no state")
                for name, table in schema.STATE_TABLES.items():
                    conn.execute(table.delete())
                    rows = state.rows(name)
                    for start in range(0, len(rows), 5000):
                        conn.execute(table.insert(), rows[start : start + 5000])
                report.state_compared = False
        return report
    finally:
        engine.dispose()


class _WithoutState:
    """A database source whose stored state is ignored (it is about to be replaced)."""

    def __init__(self, source: DatabaseSource) -> None:
        self._source = source
        self.entries = source.entries
        self.blocks = source.blocks
        self.entry_count = source.entry_count
        self.head = source.head

    def state_tables(self) -> None:
        return None

    def capsules(self) -> None:
        """Not checked: the replay rewrites the state, which capsules do not change."""

    def close(self) -> None:
        self._source.close()


__all__ = ["replay_database"]
