"""Identifiers on the ledger: the ledger's own identity id and random 128-bit ids.

Transaction, permission and record ids are 128 random bits written as 32 lowercase hex
characters; a transaction's name on the log is its leaf hash instead (see
`Transaction.tx_hash`).
"""

from __future__ import annotations

import re
import secrets

LEDGER_ID = "ledger"
"""The identity id of the ledger's own key: it signs tree heads, genesis and `access`."""

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
"""The form of a random id: 32 lowercase hex characters."""


def new_id() -> str:
    """128 random bits as 32 lowercase hex characters (transaction, permission, record ids)."""
    return secrets.token_hex(16)
