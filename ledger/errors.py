"""The ledger's exception tree.

LedgerError
├── RuleViolation          a transaction was refused by the rules; nothing was appended.
│   │                      `code` is a stable machine name (e.g. "not-granted"), the message
│   │                      says what to change
│   └── MalformedTransaction   the transaction is not well formed (shape, types, signature)
├── ProofError             a Merkle proof is malformed or does not verify
├── NoteError              a C2SP signed note, checkpoint or key cannot be used (also ValueError)
│   ├── MalformedNote          not a well-formed note, checkpoint, signature line or key
│   ├── InvalidNoteSignature   a signature from a trusted key does not verify
│   └── UntrustedNote          no signature from a trusted key is on the note
├── MalformedExport        exported entries or blocks to verify are not entries or blocks
│                          at all (also ValueError)
├── NotFound               an entry, block, proof size or row that does not exist (also KeyError)
├── LedgerConflict         another writer appended first and this one could not catch up
└── LedgerUnavailable      the database failed or the ledger is closed
    └── SchemaMissing      the database has no ledger schema: run `alembic upgrade head`
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by the ledger package."""


class RuleViolation(LedgerError):
    """A transaction breaks a ledger rule and was not appended."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, RuleViolation)
            and (other.code, other.message) == (self.code, self.message)
        )

    def __hash__(self) -> int:
        return hash((type(self), self.code, self.message))


class MalformedTransaction(RuleViolation):
    """A transaction is not well formed or its signature does not verify."""

    def __init__(self, message: str, code: str = "malformed") -> None:
        super().__init__(code, message)


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof is malformed or wrong."""


class NoteError(LedgerError, ValueError):
    """A signed note (checkpoint, cosignature, verifier key) cannot be used."""


class MalformedNote(NoteError):
    """The bytes are not a well-formed note, checkpoint, signature line or key."""


class InvalidNoteSignature(NoteError):
    """A signature line names a trusted key, but its signature does not verify."""


class UntrustedNote(NoteError):
    """No signature on the note comes from a trusted key."""


class MalformedExport(LedgerError, ValueError):
    """A verification source yielded something that is not an entry or a block at all."""


class NotFound(LedgerError, KeyError):
    """The requested entry, block, tree size or state row does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class LedgerConflict(LedgerError):
    """Another writer extended the ledger in a way this process could not follow."""


class LedgerUnavailable(LedgerError):
    """The database failed, or the ledger was closed."""


class SchemaMissing(LedgerUnavailable):
    """The database has no ledger tables, or an older schema revision."""
