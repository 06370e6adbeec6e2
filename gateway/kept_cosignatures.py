"""Witness cosignatures kept in the ledger's database (table `gateway_cosignatures`).

Every cosignature a witness returns is kept, one row per witness and checkpoint, in the
same database as the log it is about: it survives a restart (the gateway serves its latest
cosigned checkpoint at once) and a database failover (it is replicated with the log), and
it stays as evidence that the log was witnessed at each size. Rows are only ever added.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.schema import cosignatures as table
from ledger.wire.checkpoints import Checkpoint
from ledger.wire.notes import NoteSignature


class KeptCosignatures:
    """Reads and adds rows of `gateway_cosignatures` through *engine*."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keep(self, cosigned: Sequence[tuple[Checkpoint, NoteSignature]], now: str) -> None:
        """Add these cosignatures, each of its checkpoint, in one transaction (those already
        kept are left as they are)."""
        if not cosigned:
            return
        origins = {checkpoint.origin for checkpoint, _ in cosigned}
        sizes = {checkpoint.size for checkpoint, _ in cosigned}
        with self.engine.connect() as conn:
            conn.execution_options(ledger_write=True)  # SQLite: take the write lock at BEGIN
            with conn.begin():
                present = {
                    (origin, int(size), bytes(root), name, bytes(key_id))
                    for origin, size, root, name, key_id in conn.execute(
                        sa.select(
                            table.c.origin,
                            table.c.tree_size,
                            table.c.root,
                            table.c.witness,
                            table.c.key_id,
                        ).where(table.c.origin.in_(origins), table.c.tree_size.in_(sizes))
                    )
                }
                rows = []
                for checkpoint, s in cosigned:
                    key = (checkpoint.origin, checkpoint.size, checkpoint.root, s.name, s.key_id)
                    if key in present:
                        continue
                    present.add(key)
                    rows.append(
                        {
                            "origin": checkpoint.origin,
                            "tree_size": checkpoint.size,
                            "root": checkpoint.root,
                            "witness": s.name,
                            "key_id": s.key_id,
                            "line": s.line().rstrip("\n"),
                            "kept_at": now,
                        }
                    )
                if rows:
                    conn.execute(table.insert(), rows)

    def latest(self, origin: str, checkpoints: int) -> list[tuple[Checkpoint, NoteSignature]]:
        """The cosignatures of the *checkpoints* largest kept checkpoints of *origin*, the
        largest first (rows whose line does not parse are skipped)."""
        with self.engine.connect() as conn:
            sizes = [
                int(size)
                for (size,) in conn.execute(
                    sa.select(table.c.tree_size)
                    .where(table.c.origin == origin)
                    .distinct()
                    .order_by(table.c.tree_size.desc())
                    .limit(checkpoints)
                )
            ]
            if not sizes:
                return []
            rows = conn.execute(
                sa.select(table.c.tree_size, table.c.root, table.c.line)
                .where(table.c.origin == origin, table.c.tree_size >= min(sizes))
                .order_by(table.c.tree_size.desc())
            ).all()
        found = []
        for size, root, line in rows:
            try:
                checkpoint = Checkpoint(origin, int(size), bytes(root))
                found.append((checkpoint, NoteSignature.from_line(line)))
            except ValueError:
                continue
        return found
