"""The signed, tamper-evident metadata ledger: transactions, rules, Merkle log, state.

Two layers. `ledger.wire` is the protocol every party shares (transactions and their
canonical bytes, builders, ids, the time form, Merkle proof checks, tree heads); it loads
no database code, so a client verifies with it alone. The rest keeps the log in a
database: `Ledger` (open, submit, proofs, state queries and their typed results), and
`ledger.verify` with its sources.

Names below are imported on first use, so that `import ledger.wire` (or `ledger.errors`)
does not load SQLAlchemy. Errors are drawn in `ledger.errors`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.categories import (
        DEFAULT_CATEGORIES as DEFAULT_CATEGORIES,
        Category as Category,
        CategoryRegistry as CategoryRegistry,
    )
    from ledger.errors import (
        LedgerConflict as LedgerConflict,
        LedgerError as LedgerError,
        LedgerUnavailable as LedgerUnavailable,
        MalformedExport as MalformedExport,
        MalformedTransaction as MalformedTransaction,
        NotFound as NotFound,
        ProofError as ProofError,
        RuleViolation as RuleViolation,
        SchemaMissing as SchemaMissing,
    )
    from ledger.exported import ExportSource as ExportSource
    from ledger.ledger import (
        Ledger as Ledger,
    )
    from ledger.results import (
        AccessEvent as AccessEvent,
        AccessRequest as AccessRequest,
        Identity as Identity,
        KeyShare as KeyShare,
        Patient as Patient,
        Permission as Permission,
        PublishedKey as PublishedKey,
        Record as Record,
    )
    from ledger.sources import DatabaseSource as DatabaseSource
    from ledger.state import (
        Decision as Decision,
    )
    from ledger.verify import (
        Damage as Damage,
        VerifyReport as VerifyReport,
    )
    from ledger.wire.blocks import (
        Block as Block,
        Entry as Entry,
        Receipt as Receipt,
        SignedTreeHead as SignedTreeHead,
    )
    from ledger.wire.builders import (
        LedgerSigner as LedgerSigner,
    )
    from ledger.wire.clock import (
        Clock as Clock,
        format_time as format_time,
        parse_time as parse_time,
        system_clock as system_clock,
    )
    from ledger.wire.ids import (
        LEDGER_ID as LEDGER_ID,
    )
    from ledger.wire.transactions import (
        TX_TYPES as TX_TYPES,
        Transaction as Transaction,
    )

# The public surface, once: each name and the module that defines it. The imports above
# only tell type checkers the same; tests/ledger/test_api.py holds the two equal.
_EXPORTS: dict[str, str] = {
    "DEFAULT_CATEGORIES": "ledger.categories",
    "Category": "ledger.categories",
    "CategoryRegistry": "ledger.categories",
    "LedgerConflict": "ledger.errors",
    "LedgerError": "ledger.errors",
    "LedgerUnavailable": "ledger.errors",
    "MalformedExport": "ledger.errors",
    "MalformedTransaction": "ledger.errors",
    "NotFound": "ledger.errors",
    "ProofError": "ledger.errors",
    "RuleViolation": "ledger.errors",
    "SchemaMissing": "ledger.errors",
    "Ledger": "ledger.ledger",
    "AccessEvent": "ledger.results",
    "AccessRequest": "ledger.results",
    "Identity": "ledger.results",
    "KeyShare": "ledger.results",
    "Patient": "ledger.results",
    "Permission": "ledger.results",
    "PublishedKey": "ledger.results",
    "Record": "ledger.results",
    "DatabaseSource": "ledger.sources",
    "ExportSource": "ledger.exported",
    "Decision": "ledger.state",
    "Damage": "ledger.verify",
    "VerifyReport": "ledger.verify",
    "Block": "ledger.wire.blocks",
    "Entry": "ledger.wire.blocks",
    "Receipt": "ledger.wire.blocks",
    "SignedTreeHead": "ledger.wire.blocks",
    "LedgerSigner": "ledger.wire.builders",
    "Clock": "ledger.wire.clock",
    "format_time": "ledger.wire.clock",
    "parse_time": "ledger.wire.clock",
    "system_clock": "ledger.wire.clock",
    "LEDGER_ID": "ledger.wire.ids",
    "TX_TYPES": "ledger.wire.transactions",
    "Transaction": "ledger.wire.transactions",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
