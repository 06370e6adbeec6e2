"""The ledger's identities seen through `IdentityDirectory`, the interface auth needs."""

from __future__ import annotations

from envelope import PublicIdentity
from envelope.errors import EnvelopeError
from ledger.ledger import Ledger


class LedgerDirectory:
    """Identities as the ledger's state has them at this instant.

    Parsed public keys are cached per identity, keyed by the exact row they came from: every
    call still reads the ledger's current row, so a change there is seen at once.
    """

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._parsed: dict[str, tuple[tuple[str, str, str], PublicIdentity]] = {}

    def identity(self, identity_id: str) -> PublicIdentity | None:
        found = self._ledger.identity(identity_id)
        # The ledger's own identity has no encryption key and never logs in.
        if found is None or found.encryption_key is None:
            return None
        fingerprint = (found.role, found.signing_key, found.encryption_key)
        cached = self._parsed.get(identity_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        try:
            identity = PublicIdentity.from_json(
                {
                    "id": found.id,
                    "role": found.role,
                    "signing_public_key": found.signing_key,
                    "encryption_public_key": found.encryption_key,
                }
            )
        except EnvelopeError:
            return None
        self._parsed[identity_id] = (fingerprint, identity)
        return identity

    def is_suspended(self, identity_id: str) -> bool:
        return self._ledger.is_suspended(identity_id)

    def follow(self, ledger_size: int) -> None:
        self._ledger.follow(ledger_size)
