"""The ledger protocol that every party shares: the ledger, the gateway and every client.

What is here is pure (no database, no I/O): a client verifies the gateway with this layer
alone, and importing it loads no SQLAlchemy (a test proves it in a subprocess).

- `transactions`: `Transaction` (`{type, body, signer, signature}`), its canonical bytes
  (`encoding`, RFC 8785) and its leaf hash; `TX_TYPES`.
- `builders`: one function per transaction type, signing with an actor's Ed25519 key.
- `ids`: `LEDGER_ID`, the reserved ids, the form of a patient's id and random 128-bit
  ids; `clock`: the one text form of a time.
- `merkle`: RFC 9162 leaf and node hashes, inclusion and consistency proof checks.
- `blocks`: signed tree heads (blocks), receipts and the export shape of entries.
- `notes`, `checkpoints`, `cosignatures`, `tlog_witness`: C2SP signed notes, checkpoints
  (every block is one), witness cosignatures and the witness's add-checkpoint request
  (docs/federation.md).
- `shapes`: the members of each JSON object the ledger signs and the gateway answers with,
  and the access actions; `problems`: the RFC 9457 problem types the gateway answers with
  and clients map from.
"""

from ledger.wire.blocks import Block, Entry, Receipt, SignedTreeHead
from ledger.wire.builders import LedgerSigner
from ledger.wire.clock import Clock, format_time, parse_time, system_clock
from ledger.wire.ids import LEDGER_ID, new_id
from ledger.wire.merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion
from ledger.wire.transactions import TX_TYPES, Transaction

__all__ = [
    "LEDGER_ID",
    "TX_TYPES",
    "Block",
    "Clock",
    "Entry",
    "LedgerSigner",
    "Receipt",
    "SignedTreeHead",
    "Transaction",
    "format_time",
    "leaf_hash",
    "new_id",
    "node_hash",
    "parse_time",
    "system_clock",
    "verify_consistency",
    "verify_inclusion",
]
