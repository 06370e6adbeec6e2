"""Rotating a patient's K after a leak, from the patient's client, resumable at any point.

1. The key file gets the new K (generation g+1) with the old one kept beside it, written
   before anything changes on the ledger: a rotation interrupted anywhere loses nothing.
2. The new generation's public keys are published (every month the patient published or
   has records in, and the coming months): the ledger's `publish_keys` of generation g+1
   replaces the old keys, so uploads from then on are sealed to keys the leaked K does not
   derive.
3. Every record whose `key_generation` is older is rewrapped, a batch at a time: the
   gateway hands out the capsules, the client opens each with the old K, rewraps it to the
   new key of its (category, month), opens the result with the new K, and sends the
   patient-signed `rekey` entries together. The ledger's state is the progress.
4. Every grantee with a key share and a live read grant gets a new share, of the new
   generation's seeds for exactly what its grants cover.
5. The old K is dropped from the key file.

Run again after an interruption, the same call finishes what is left.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ehrgate._client.consent import Consent
from ehrgate._client.fetch import Fetcher
from ehrgate._client.keys import ScopedKeys, current_period
from ehrgate._client.session import Session, items
from ehrgate.errors import MalformedAnswer, UsageError, VerificationFailed
from envelope import (
    EnvelopeError,
    InvalidEnvelope,
    InvalidKeyFile,
    PatientKeys,
    WrongPassphrase,
    b64decode,
    b64encode,
    write_key_file,
)
from envelope.keyfile import key_file_header, parse_key_file, read_key_file_bytes
from envelope.rotation import Rewrapper, finish_rotation, start_rotation
from envelope.scoped import next_period, scoped_private_key
from ledger.wire import builders
from ledger.wire.scoped import DEFAULT_MONTHS_AHEAD, MAX_KEYS_PER_TX, MAX_REKEY_BATCH

REKEY_BATCH = MAX_REKEY_BATCH
"""Capsules rewrapped per request (the gateway's most)."""


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Where a rotation is: *phase* ("publish", "rewrap", "reshare"), done of total."""

    phase: str
    done: int
    total: int


@dataclass(slots=True)
class Rotation:
    """What `rotate_patient_key` did, this run."""

    generation: int
    resumed: bool
    published: int = 0
    rewrapped: int = 0
    reshared: list[str] = field(default_factory=list)
    unopened: list[str] = field(default_factory=list)
    """Records whose capsule the previous K did not open (left as they were)."""


Progress = Callable[[RotationProgress], None]


def _quiet(progress: RotationProgress) -> None:
    del progress


class Rekeying:
    """The patient's key rotation."""

    def __init__(
        self, session: Session, keys: ScopedKeys, consent: Consent, fetcher: Fetcher
    ) -> None:
        self._session = session
        self._keys = keys
        self._consent = consent
        self._fetcher = fetcher

    def rekey_status(self) -> dict[str, Any]:
        """The gateway's account of the patient's generation and what is left to rewrap."""
        patient = self._session.patient_keys("ask for its re-keying status")
        answer = self._session.get(f"/v1/patients/{patient.pseudonym}/rekey")
        if not isinstance(answer, dict):
            raise MalformedAnswer("the gateway's re-keying status is not an object")
        return answer

    def rotate_patient_key(
        self,
        key_file: str | os.PathLike[str],
        *,
        passphrase: str | None = None,
        progress: Progress | None = None,
        batch: int = REKEY_BATCH,
    ) -> Rotation:
        """Rotate the patient's K (the key file at *key_file*, rewritten in place), or
        finish a rotation an interruption left (see the module's description)."""
        own = self._session.patient_keys("rotate its key")
        if not 1 <= batch <= REKEY_BATCH:
            raise UsageError(f"rewrap 1 to {REKEY_BATCH} records per request")
        report = progress or _quiet
        path = Path(key_file)
        keys, protected = _load(path, passphrase)
        passphrase = passphrase if protected else None  # rewritten as it was
        if keys.pseudonym != own.pseudonym:
            raise UsageError(f"{path} is the key file of another patient than this client's")
        status = self.rekey_status()
        generation = int(status["generation"])
        resumed = keys.previous_key is not None
        if not resumed:
            if keys.key_generation != generation:
                raise UsageError(
                    f"{path} holds generation {keys.key_generation} of the key, but the "
                    f"ledger is at generation {generation}: use the newest key file"
                )
            keys = start_rotation(keys)
            write_key_file(path, keys, passphrase=passphrase, overwrite=True)
        elif keys.key_generation not in (generation, generation + 1):
            raise UsageError(
                f"{path} rotates to generation {keys.key_generation}, but the ledger is at "
                f"generation {generation}"
            )
        self._use(keys)
        done = Rotation(keys.key_generation, resumed)
        done.published = self._publish(keys, status, report)
        self._rewrap(keys, done, report, batch)
        done.reshared = self._reshare(keys, report)
        final = finish_rotation(keys)
        write_key_file(path, final, passphrase=passphrase, overwrite=True)
        self._use(final)
        return done

    def _use(self, keys: PatientKeys) -> None:
        """From now on this client seals, shares and opens with *keys*' K."""
        self._session.patient = keys
        self._session.patient_key = keys.patient_key
        self._keys.forget()
        self._fetcher.use_patient_key(keys.pseudonym, keys.patient_key)

    def _publish(self, keys: PatientKeys, status: dict[str, Any], report: Progress) -> int:
        answer = self._session.get(f"/v1/patients/{keys.pseudonym}/keys")
        try:
            published = {
                (str(k["category"]), str(k["period"])): int(k.get("generation", 1))
                for k in items(answer, "keys")
            }
            periods = {(str(p["category"]), str(p["period"])) for p in status["periods"]}
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedAnswer("the gateway's published keys are malformed") from exc
        first = current_period()
        coming = {next_period(first, n) for n in range(DEFAULT_MONTHS_AHEAD + 1)}
        wanted = (
            set(published) | periods | {(c, p) for c in self._keys.categories() for p in coming}
        )
        todo = sorted(pair for pair in wanted if published.get(pair, 0) < keys.key_generation)
        for at in range(0, len(todo), MAX_KEYS_PER_TX):
            report(RotationProgress("publish", at, len(todo)))
            chunk = todo[at : at + MAX_KEYS_PER_TX]
            tx = builders.publish_keys(
                keys.identity,
                pseudonym=keys.pseudonym,
                keys=[
                    (c, p, scoped_private_key(keys.patient_key, c, p).public_key().to_bytes())
                    for c, p in chunk
                ],
                generation=keys.key_generation,
            )
            self._session.post(f"/v1/patients/{keys.pseudonym}/keys", tx.to_json())
        report(RotationProgress("publish", len(todo), len(todo)))
        return len(todo)

    def _rewrap(self, keys: PatientKeys, done: Rotation, report: Progress, batch: int) -> None:
        previous = keys.previous_key
        assert previous is not None
        base = f"/v1/patients/{keys.pseudonym}/rekey"
        after = -1
        total: int | None = None
        rewrapper = Rewrapper(old=previous, new=keys.patient_key, pseudonym=keys.pseudonym)
        while True:
            status = self._session.get(base, {"limit": batch, "after": after})
            pending = items(status, "pending")
            if total is None:
                total = int(status["remaining"])
            report(RotationProgress("rewrap", done.rewrapped, total))
            if not pending:
                return
            out = []
            for record in pending:
                after = max(after, int(record["entry_index"]))
                try:
                    capsule = rewrapper.rewrap(
                        b64decode(record["capsule"]),
                        category=record["category"],
                        created_at=record["created_at"],
                        body_sha256=record["body_sha256"],
                    )
                except InvalidEnvelope:
                    done.unopened.append(str(record["record_id"]))
                    continue
                except (EnvelopeError, KeyError, TypeError) as exc:
                    raise MalformedAnswer("the gateway's records to rewrap are malformed") from exc
                tx = builders.rekey(
                    keys.identity,
                    record_id=record["record_id"],
                    capsule_sha256=hashlib.sha256(capsule).hexdigest(),
                    generation=keys.key_generation,
                )
                out.append({"transaction": tx.to_json(), "capsule": b64encode(capsule)})
            if out:
                answer = self._session.post(base, {"items": out})
                refused = [r for r in items(answer, "results") if r.get("refused")]
                if refused:
                    raise VerificationFailed(
                        f"the ledger refused the rekey of record {refused[0]['record_id']}: "
                        f"{refused[0]['refused']}; run the rotation again to finish it"
                    )
                done.rewrapped += len(out)

    def _reshare(self, keys: PatientKeys, report: Progress) -> list[str]:
        status = self.rekey_status()
        started = status.get("started_at")
        try:
            shares = [(str(s["grantee"]), int(s["entry_index"])) for s in status["shared_with"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedAnswer("the gateway's key shares are malformed") from exc
        todo = [g for g, index in shares if started is None or index < int(started)]
        reshared = []
        for n, grantee in enumerate(todo):
            report(RotationProgress("reshare", n, len(todo)))
            try:
                self._consent.share_key(grantee)
            except UsageError as exc:
                if "no read permission" not in str(exc):
                    raise
                continue  # its grants ended: its old share opens nothing rewrapped
            reshared.append(grantee)
        report(RotationProgress("reshare", len(todo), len(todo)))
        return reshared


def _load(path: Path, passphrase: str | None) -> tuple[PatientKeys, bool]:
    """The patient keys in the key file, and whether a passphrase protects it."""
    try:
        raw = read_key_file_bytes(path)
        header = key_file_header(raw, str(path))
        if header["version"] == 1:
            raise UsageError(
                f"{path} is a version 1 key file: run `ehrgate keys upgrade {path}` first "
                "(it keeps a backup and changes no key); the rotation then moves its "
                "records onto scoped version 2 keys"
            )
        keys = parse_key_file(raw, passphrase, str(path))
    except WrongPassphrase as exc:
        raise VerificationFailed(str(exc)) from exc
    except InvalidKeyFile as exc:
        raise UsageError(str(exc)) from exc
    if not isinstance(keys, PatientKeys):
        raise UsageError(f"{path} is not a patient's key file: only a patient rotates its key")
    return keys, "encrypted" in header
