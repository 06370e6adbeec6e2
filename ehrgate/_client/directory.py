"""Enrolled identities and registered patients as a gateway shows them, looked up once.

Their public keys do not change, so each is asked for once per client and kept (the
lookups are safe from several threads).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from ehrgate._client.session import Session
from ehrgate.errors import MalformedAnswer
from ehrgate.models import Identity, Patient

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
