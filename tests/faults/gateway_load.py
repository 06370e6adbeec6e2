"""Uploads from several client threads to one gateway, remembering what it acknowledged.

Each thread seals random bytes (regenerated later from a seed, so nothing large is kept),
uploads the body, commits the record and, once the gateway answered 201, records the
upload as acknowledged. A gateway that is down or restarting costs a retry; any other
refusal is kept as a defect for the test to report.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import httpx

from envelope import IdentityKeys, PatientKeys
from tests.faults.gateway_client import Actor, Refused, Unavailable, upload
from tests.faults.workers import Workers

CATEGORIES = ("lab-results", "history-physical", "radiation-dose")


@dataclass(frozen=True, slots=True)
class Upload:
    record_id: str
    seed: int
    size: int

    def plaintext(self) -> bytes:
        return plaintext(self.seed, self.size)


def plaintext(seed: int, size: int) -> bytes:
    return b"%PDF-1.7\n" + random.Random(seed).randbytes(size)


class UploadLoad(Workers):
    def __init__(
        self,
        url: str,
        uploaders: list[IdentityKeys],
        patient: PatientKeys,
        seed: int,
        *,
        max_size: int = 150_000,
    ) -> None:
        self.url = url
        self.patient = patient
        self.max_size = max_size
        self.acknowledged: list[Upload] = []
        self.outcomes: Counter[str] = Counter()
        self.refusals: list[str] = []
        super().__init__(
            (partial(self._run, keys, seed + n) for n, keys in enumerate(uploaders)),
            "an upload thread",
        )

    def ack_count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def wait_for_acks(self, count: int, timeout: float = 120) -> None:
        self._wait_until(
            lambda: len(self.acknowledged) >= count,
            timeout,
            lambda: (
                f"only {len(self.acknowledged)} of {count} uploads acknowledged; "
                f"outcomes {dict(self.outcomes)}; {self.refusals[-3:]}"
            ),
        )

    def _run(self, keys: IdentityKeys, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            actor = Actor(client, keys)
            while not self._stop.is_set():
                upload_seed = rng.randrange(2**63)
                size = rng.randrange(0, self.max_size)
                category = rng.choice(CATEGORIES)
                try:
                    record_id = upload(actor, self.patient, category, plaintext(upload_seed, size))
                except Unavailable:
                    with self._lock:
                        self.outcomes["unavailable"] += 1
                    time.sleep(0.05)
                    continue
                except Refused as exc:
                    with self._lock:
                        self.outcomes[f"refused {exc.status}"] += 1
                        if len(self.refusals) < 50:
                            self.refusals.append(str(exc)[:500])
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.outcomes["acknowledged"] += 1
                    self.acknowledged.append(Upload(record_id, upload_seed, size))
                    self._lock.notify_all()
