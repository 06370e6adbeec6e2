"""E-mail addresses, sealed at rest with AES-256-GCM under the gateway's contact key.

A sealed address is the 12-byte nonce followed by the ciphertext and tag; the identity id is
the associated data, so that a sealed address moved to another identity's row does not open.
The key comes from the settings (`contact_key`, 32 bytes as base64); addresses are never on
the ledger and never logged.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAX_EMAIL_LENGTH = 254
_NONCE = 12
# A deliberately plain check: one @, a dot in the domain, no spaces or angle brackets.
_EMAIL = re.compile(r"[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*\.)+[A-Za-z0-9-]{2,}")


class ContactError(ValueError):
    """A contact address or key that cannot be used; the message says why."""


def contact_key_from_text(text: str) -> bytes:
    """The 32-byte key of its base64 form (the `contact_key` setting)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ContactError("contact_key must be 32 bytes as standard base64") from exc
    if len(key) != 32:
        raise ContactError(f"contact_key must be 32 bytes as standard base64, not {len(key)}")
    return key


def check_email(address: str) -> str:
    if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(address):
        raise ContactError(
            f"not an e-mail address the gateway can send to (name@domain.example, at most"
            f" {MAX_EMAIL_LENGTH} characters)"
        )
    return address


def seal_email(key: bytes, identity_id: str, address: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, address.encode(), identity_id.encode())


def open_email(key: bytes, identity_id: str, sealed: bytes) -> str:
    try:
        plain = AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], identity_id.encode())
    except (InvalidTag, ValueError) as exc:
        raise ContactError("the stored address does not open with the contact key") from exc
    return plain.decode()
