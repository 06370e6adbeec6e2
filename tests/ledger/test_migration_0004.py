"""Migration 0004: `state_erasures` on an existing ledger, and no way back once used."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from ledger import schema
from ledger.migrate import alembic_config, upgrade


def test_0004_adds_the_erasures_and_refuses_to_go_back_over_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0003")
    engine = sa.create_engine(url)
    try:
        assert "state_erasures" not in sa.inspect(engine).get_table_names()
        upgrade(url)
        assert "state_erasures" in sa.inspect(engine).get_table_names()
        command.downgrade(alembic_config(url), "0003")  # empty: nothing to lose
        assert "state_erasures" not in sa.inspect(engine).get_table_names()
        upgrade(url)
        with engine.begin() as conn:
            conn.execute(
                schema.erasures.insert(),
                {"record_id": "r1", "pseudonym": "ab" * 32, "scope": "record",
                 "erased_by": "admin", "entry_index": 7},
            )  # fmt: skip
        with pytest.raises(RuntimeError, match="erased records"):
            command.downgrade(alembic_config(url), "0003")
        with engine.connect() as conn:
            assert conn.execute(sa.select(schema.erasures.c.record_id)).scalars().all() == ["r1"]
    finally:
        engine.dispose()
