"""The verification source for exported JSON: pages of a gateway's /v1/ledger/entries and
/v1/ledger/blocks, or a file. Pure: a client verifies a gateway's log with it, no database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ledger.errors import MalformedExport
from ledger.state import Row
from ledger.verify import SourceEntry
from ledger.wire.blocks import Block


class ExportSource:
    """Exported JSON, e.g. pages of a gateway's /v1/ledger/entries and /v1/ledger/blocks.

    *entries* and *blocks* are iterables of the export formats in `ledger.wire.blocks`; they may
    be generators that fetch pages lazily.
    """

    def __init__(
        self,
        entries: Iterable[Mapping[str, Any]],
        blocks: Iterable[Mapping[str, Any]],
        *,
        count: int | None = None,
    ) -> None:
        self._entries = entries
        self._blocks = blocks
        self._count = count

    def entry_count(self) -> int | None:
        return self._count

    def head(self) -> tuple[int, int] | None:
        return None

    def entries(self) -> Iterator[SourceEntry]:
        for position, data in enumerate(self._entries):
            try:
                yield SourceEntry(int(data["index"]), int(data["block"]), dict(data["tx"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedExport(
                    f"exported entry #{position} is not {{index, block, tx}}: {exc!r}"
                ) from exc

    def blocks(self) -> Iterator[Block]:
        for position, data in enumerate(self._blocks):
            try:
                yield Block.from_json(dict(data))
            except (TypeError, ValueError) as exc:
                raise MalformedExport(f"exported block #{position} is malformed: {exc}") from exc

    def state_tables(self) -> Mapping[str, Iterable[Row]] | None:
        return None

    def capsules(self) -> Iterable[tuple[str, bytes]] | None:
        """None: a gateway exports the log, not the capsules it stores."""
        return None

    def close(self) -> None:
        """Nothing to release: the iterables belong to the caller."""
