"""The signed, tamper-evident metadata ledger: transactions, rules, Merkle log, state.

The public surface: `Ledger` (open a database, submit, proofs, state queries), the
transaction builders in `ledger.builders`, `Transaction`, `Block` (a signed tree head),
`Receipt`, `Decision`, the categories, the pure Merkle functions in `ledger.merkle`, and
`verify` with its sources. Errors are drawn in `ledger.errors`.
"""

from ledger import builders, merkle
from ledger.blocks import Block, Entry, Receipt, SignedTreeHead
from ledger.builders import LEDGER_ID, LedgerSigner
from ledger.categories import DEFAULT_CATEGORIES, Category, CategoryRegistry
from ledger.clock import Clock, format_time, parse_time, system_clock
from ledger.errors import (
    LedgerConflict,
    LedgerError,
    LedgerUnavailable,
    MalformedTransaction,
    NotFound,
    ProofError,
    RuleViolation,
    SchemaMissing,
)
from ledger.ledger import Ledger
from ledger.sources import DatabaseSource, ExportSource
from ledger.state import Decision
from ledger.transactions import TX_TYPES, Transaction
from ledger.verify import Damage, VerifyReport, verify

__all__ = [
    "DEFAULT_CATEGORIES",
    "LEDGER_ID",
    "TX_TYPES",
    "Block",
    "Category",
    "CategoryRegistry",
    "Clock",
    "Damage",
    "DatabaseSource",
    "Decision",
    "Entry",
    "ExportSource",
    "Ledger",
    "LedgerConflict",
    "LedgerError",
    "LedgerSigner",
    "LedgerUnavailable",
    "MalformedTransaction",
    "NotFound",
    "ProofError",
    "Receipt",
    "RuleViolation",
    "SchemaMissing",
    "SignedTreeHead",
    "Transaction",
    "VerifyReport",
    "builders",
    "format_time",
    "merkle",
    "parse_time",
    "system_clock",
    "verify",
]
