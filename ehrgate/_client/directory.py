"""Enrolled identities and registered patients as a gateway shows them, looked up once.

Each is asked for once per client and kept (the lookups are safe from several threads).
An identity's keys change only by a rotation on the ledger; what a key signed before it is
checked with the key history (`identity_keys`, `signing_key_at`), which is never kept.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ehrgate._client.session import Session
from ehrgate.errors import MalformedAnswer
from ehrgate.models import Identity, IdentityKey, Patient

T = TypeVar("T")


class Directory:
    """Identities and patients by id, kept after the first lookup."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._patients: dict[str, Patient] = {}
        self._identities: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def whoami(self) -> Identity:
        """The caller's own identity, as enrolled."""
        return Identity.from_json(self._session.get("/v1/identities/me"))

    def identity_of(self, identity_id: str) -> Identity:
        """An enrolled identity's role and public keys."""
        return self._kept(
            self._identities,
            identity_id,
            lambda: Identity.from_json(self._session.get(f"/v1/identities/{identity_id}")),
        )

    def current_identity(self, identity_id: str) -> Identity:
        """The identity as enrolled now, asked afresh (its keys may have been rotated since
        it was kept): for sealing a secret to it."""
        found = Identity.from_json(self._session.get(f"/v1/identities/{identity_id}"))
        with self._lock:
            self._identities[identity_id] = found
        return found

    def identity_keys(self, identity_id: str) -> list[IdentityKey]:
        """Every key the identity has held, oldest first, with the entries it was valid for
        (not kept: a rotation adds one)."""
        answer = self._session.get(f"/v1/identities/{identity_id}/keys")
        keys = answer.get("keys") if isinstance(answer, dict) else None
        if not isinstance(keys, list) or answer.get("id") != identity_id:
            raise MalformedAnswer(f"the gateway's key history of {identity_id} is malformed")
        return [IdentityKey.from_json(key) for key in keys]

    def signing_key_at(self, identity_id: str, index: int) -> str:
        """The signing key (base64) *identity_id* held at ledger entry *index*."""
        keys = self.identity_keys(identity_id)
        for key in keys:
            if key.covers(index):
                return key.signing_public_key
        raise MalformedAnswer(f"the gateway names no key of {identity_id} at entry {index}")

    def patient(self, pseudonym: str) -> Patient:
        """A registered patient's record public key (what uploads are sealed to)."""
        return self._kept(self._patients, pseudonym, lambda: self._load_patient(pseudonym))

    def _load_patient(self, pseudonym: str) -> Patient:
        found = Patient.from_json(self._session.get(f"/v1/patients/{pseudonym}"))
        if found.pseudonym != pseudonym:
            raise MalformedAnswer("the gateway answered for another pseudonym")
        return found

    def _kept(self, kept: dict[str, T], key: str, load: Callable[[], T]) -> T:
        with self._lock:
            known = kept.get(key)
        if known is not None:
            return known
        found = load()
        with self._lock:
            kept[key] = found
        return found
