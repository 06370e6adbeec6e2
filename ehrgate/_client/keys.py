"""Scoped record keys on the client: publishing the patient's (category, month) public keys,
and finding the one to seal an upload to, checked here, not taken from the gateway.

An uploader believes a published key only when the patient's own signed `publish_keys`
entry carries it (its signature checked with the patient's enrolled key) and a receipt
under a tree head signed by the trusted ledger key proves that entry is on the log.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime

from ehrgate._client.directory import Directory
from ehrgate._client.session import Session, items
from ehrgate._client.trust import Trust
from ehrgate.errors import MalformedAnswer, UsageError, VerificationFailed
from ehrgate.models import Receipt
from envelope import EnvelopeError, HybridPublicKey, b64decode
from envelope.scoped import next_period, record_period, scoped_private_key
from ledger.errors import LedgerError
from ledger.wire import builders
from ledger.wire.scoped import DEFAULT_MONTHS_AHEAD, MAX_KEYS_PER_TX, MAX_MONTHS_AHEAD
from ledger.wire.transactions import Transaction


def current_period() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


class ScopedKeys:
    """The patient's published keys: publish them, and look them up to seal to."""

    def __init__(self, session: Session, trust: Trust, directory: Directory) -> None:
        self._session = session
        self._trust = trust
        self._directory = directory
        self._found: dict[tuple[str, str, str], tuple[HybridPublicKey, int]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Forget the keys found so far (the patient rotated its K: they are replaced)."""
        with self._lock:
            self._found.clear()

    def categories(self) -> list[str]:
        """The record categories the gateway's ledger accepts."""
        answer = self._session.get("/v1/categories")
        found = items(answer, "categories")
        if not all(isinstance(name, str) for name in found):
            raise MalformedAnswer("the gateway's categories are not names")
        return [str(name) for name in found]

    def published(self, pseudonym: str | None = None) -> list[tuple[str, str]]:
        """The (category, month) pairs a patient has published keys for."""
        pseudonym = self._session.pseudonym(pseudonym)
        answer = self._session.get(f"/v1/patients/{pseudonym}/keys")
        try:
            return [(str(k["category"]), str(k["period"])) for k in items(answer, "keys")]
        except (KeyError, TypeError) as exc:
            raise MalformedAnswer("the gateway's published keys are malformed") from exc

    def publish_keys(
        self, months: int = DEFAULT_MONTHS_AHEAD, *, start: str | None = None
    ) -> list[Receipt]:
        """Publish the public keys of every category for the month *start* (default: the
        current UTC month) and the *months* after it, those not yet published (the patient).
        Returns one receipt per transaction (at most 128 keys each); none if all were."""
        patient = self._session.patient_keys("publish its keys")
        if not 0 <= months <= MAX_MONTHS_AHEAD:
            raise UsageError(f"publish keys for 0 to {MAX_MONTHS_AHEAD} coming months")
        try:
            first = start or current_period()
            periods = [next_period(first, n) for n in range(months + 1)]
        except EnvelopeError as exc:
            raise UsageError(str(exc)) from exc
        done = set(self.published(patient.pseudonym))
        wanted = [
            (category, period, scoped_private_key(patient.patient_key, category, period))
            for category in self.categories()
            for period in periods
            if (category, period) not in done
        ]
        receipts = []
        for at in range(0, len(wanted), MAX_KEYS_PER_TX):
            chunk = wanted[at : at + MAX_KEYS_PER_TX]
            tx = builders.publish_keys(
                patient.identity,
                pseudonym=patient.pseudonym,
                keys=[(c, p, key.public_key().to_bytes()) for c, p, key in chunk],
            )
            answer = self._session.post(f"/v1/patients/{patient.pseudonym}/keys", tx.to_json())
            receipts.append(self._trust.receipt(answer, tx))
        return receipts

    def recipient(self, pseudonym: str, category: str, created_at: str) -> HybridPublicKey:
        """The published key a record of *category* created at *created_at* is sealed to,
        after checking the patient signed it and the ledger holds it."""
        return self.recipient_and_generation(pseudonym, category, created_at)[0]

    def recipient_and_generation(
        self, pseudonym: str, category: str, created_at: str
    ) -> tuple[HybridPublicKey, int]:
        """`recipient`, and the generation of the patient's K it derives from (the gateway
        refuses a record sealed to an older generation than the current one)."""
        try:
            period = record_period(created_at)
        except EnvelopeError as exc:
            raise UsageError(str(exc)) from exc
        key = (pseudonym, category, period)
        with self._lock:
            known = self._found.get(key)
        if known is not None:
            return known
        found = self._load(pseudonym, category, period)
        with self._lock:
            self._found[key] = found
        return found

    def _load(self, pseudonym: str, category: str, period: str) -> tuple[HybridPublicKey, int]:
        answer = self._session.get(f"/v1/patients/{pseudonym}/keys/{category}/{period}")
        try:
            tx = Transaction.from_json(answer["entry"]["tx"])
            index = answer["entry"]["index"]
            state_sha256 = answer["key"]["public_key_sha256"]
            if not isinstance(index, int):
                raise TypeError("entry index")
        except (KeyError, TypeError, LedgerError) as exc:
            raise MalformedAnswer("the gateway's published key answer is malformed") from exc
        patient = self._directory.patient(pseudonym)
        signer = self._directory.identity_of(patient.identity_id)
        if tx.type != "publish_keys" or tx.signer != patient.identity_id:
            raise VerificationFailed("the published key is not in the patient's publish_keys")
        if tx.body.get("pseudonym") != pseudonym:
            raise VerificationFailed("the published key belongs to another pseudonym")
        try:
            try:
                tx.verify_signature(b64decode(signer.signing_public_key, length=32))
            except LedgerError:
                # The patient may have rotated its keys since: the entry was signed with
                # the key valid at its index.
                then = self._directory.signing_key_at(patient.identity_id, index)
                tx.verify_signature(b64decode(then, length=32))
        except (LedgerError, EnvelopeError) as exc:
            raise VerificationFailed(
                "the publish_keys entry is not signed by the patient's enrolled key"
            ) from exc
        self._trust.receipt(answer, tx)
        generation = tx.body.get("generation", 1)
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 1:
            raise VerificationFailed("the publish_keys entry names no valid key generation")
        return _key_in(tx, category, period, state_sha256), generation


def _key_in(tx: Transaction, category: str, period: str, state_sha256: object) -> HybridPublicKey:
    for item in tx.body.get("keys", []):
        if isinstance(item, dict) and (item.get("category"), item.get("period")) == (
            category,
            period,
        ):
            try:
                raw = b64decode(item["public_key"])
                key = HybridPublicKey(raw)
            except (KeyError, TypeError, EnvelopeError) as exc:
                raise VerificationFailed("the published key is not an X-Wing key") from exc
            if hashlib.sha256(raw).hexdigest() != state_sha256:
                raise VerificationFailed("the gateway names another key than the signed one")
            return key
    raise VerificationFailed(f"the signed entry carries no key for {category} in {period}")
