"""Identifiers on the ledger: the ledger's own identity id, the two kinds of identity ids,
and random 128-bit ids.

A patient's identity id is the pseudonym it registers first: 64 lowercase hex characters.
Every other identity (admin, clinician, system, auditor, the ledger) has an id that does
not have that form, so a patient's registration can never take a staff member's name, nor
an enrollment a patient's. The ids in `RESERVED_IDS` are nobody's but the ledger's.

Transaction, permission and record ids are 128 random bits written as 32 lowercase hex
characters; a transaction's name on the log is its leaf hash instead (see
`Transaction.tx_hash`).
"""

from __future__ import annotations

import re
import secrets

LEDGER_ID = "ledger"
"""The identity id of the ledger's own key: it signs tree heads, genesis and `access`."""

RESERVED_IDS = frozenset({LEDGER_ID})
"""Identity ids that neither an enrollment nor a patient's registration may take."""

PATIENT_ID_PATTERN = re.compile(r"[0-9a-f]{64}")
"""The form of a patient's identity id: its (first) pseudonym."""

ID_PATTERN = re.compile(r"[0-9a-f]{32}")
"""The form of a random id: 32 lowercase hex characters."""


def is_patient_id(identity_id: str) -> bool:
    """True when *identity_id* has the form of a patient's id (64 lowercase hex characters)."""
    return PATIENT_ID_PATTERN.fullmatch(identity_id) is not None


def new_id() -> str:
    """128 random bits as 32 lowercase hex characters (transaction, permission, record ids)."""
    return secrets.token_hex(16)
