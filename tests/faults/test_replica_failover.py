"""Load through HAProxy over three replicas while one of them is killed with -9 and restarted.

Uploaders (seal, stream the body, commit the record) and readers (stream acknowledged bodies,
each read audited on the ledger) run through the balancer on loopback; replica 1 is killed
with SIGKILL mid-run and started again. A client whose request died with the replica retries
the same upload until it is acknowledged. Afterwards: every upload the deployment
acknowledged is listed and decrypts to its bytes; every body a reader received has its
`access` entry; `ehrgate ledger verify` passes; every replica reports the same head (one
chain of blocks, no fork).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from envelope import IdentityKeys, PatientKeys
from ledger import schema
from tests.faults.conftest import FIGURES
from tests.faults.gateway_client import (
    Actor,
    Refused,
    Unavailable,
    enroll,
    grant,
    listed_record_ids,
    register_patient,
    upload,
)
from tests.faults.gateway_load import CATEGORIES, Upload, plaintext
from tests.faults.harness import ehrgate
from tests.faults.settings import rng_for
from tests.faults.test_gateway_crash import check_every_upload_reads_back
from tests.postgres import scratch_database
from tests.replicas import Deployment, haproxy_available

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not haproxy_available(), reason="needs Debian's haproxy (.ci/run installs it)"
    ),
]

UPLOADERS = 4
READERS = 2
MAX_ATTEMPTS = 30


class Traffic:
    """Upload and read threads through one URL, and what the deployment acknowledged."""

    def __init__(self, url: str, patient: PatientKeys, uploaders: list[IdentityKeys], seed: int):
        self.url = url
        self.patient = patient
        self.acknowledged: list[Upload] = []
        self.bodies_read: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.defects: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._upload, args=(keys, seed + n), daemon=True)
            for n, keys in enumerate(uploaders)
        ] + [
            threading.Thread(target=self._read, args=(seed + 100 + n,), daemon=True)
            for n in range(READERS)
        ]

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a client thread hangs"

    def count(self, what: str) -> int:
        with self.lock:
            return self.outcomes[what]

    def wait_for(self, what: str, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.count(what) < count:
            assert time.monotonic() < deadline, f"{dict(self.outcomes)} {self.defects[:3]}"
            time.sleep(0.05)

    def _note(self, what: str, defect: str | None = None) -> None:
        with self.lock:
            self.outcomes[what] += 1
            if defect is not None and len(self.defects) < 20:
                self.defects.append(defect[:400])

    def _upload(self, keys: IdentityKeys, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            actor = Actor(client, keys)
            while not self.stop.is_set():
                body_seed, size = rng.randrange(2**63), rng.randrange(0, 60_000)
                category = rng.choice(CATEGORIES)
                for attempt in range(MAX_ATTEMPTS):  # the same upload until acknowledged
                    try:
                        record_id = upload(
                            actor, self.patient, category, plaintext(body_seed, size)
                        )
                    except Unavailable:
                        self._note("upload retried")
                        time.sleep(0.05)
                        continue
                    except Refused as exc:
                        self._note("upload refused", str(exc))
                        break
                    with self.lock:
                        self.acknowledged.append(Upload(record_id, body_seed, size))
                        self.outcomes["upload acknowledged"] += 1
                        if attempt:
                            self.outcomes["upload acknowledged after a retry"] += 1
                    break
                else:
                    self._note("upload gave up", "no replica acknowledged the upload")

    def _read(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=30) as client:
            actor = Actor(client, self.patient.identity)
            while not self.stop.is_set():
                with self.lock:
                    known = list(self.acknowledged)
                if not known:
                    time.sleep(0.05)
                    continue
                chosen = known[rng.randrange(len(known))]
                try:
                    # A body cut short by a dying replica raises (a transport error).
                    actor.request("GET", f"/v1/records/{chosen.record_id}/body")
                except (Unavailable, httpx.TransportError):
                    self._note("read retried")
                    continue
                except Refused as exc:
                    self._note("read refused", str(exc))
                    continue
                with self.lock:
                    self.bodies_read[chosen.record_id] += 1
                    self.outcomes["body read"] += 1


def test_load_through_the_balancer_survives_a_replica_killed_and_restarted(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    rng = rng_for(request.node.name)
    with scratch_database("ehrgate_failover") as url:
        deployment = Deployment(tmp_path, url)
        try:
            deployment.start()
            with httpx.Client(base_url=deployment.url, timeout=30) as client:
                admin = Actor(client, deployment.admin_keys())
                uploaders = [enroll(admin, f"uploader-{n}", "clinician") for n in range(UPLOADERS)]
                patient = register_patient(admin, "Failover Patient")
                owner = Actor(client, patient.identity)
                for uploader in uploaders:
                    grant(owner, patient.pseudonym, uploader.id, ["write"])

            traffic = Traffic(deployment.url, patient, uploaders, rng.randrange(2**32)).start()
            try:
                traffic.wait_for("upload acknowledged", 20)
                traffic.wait_for("body read", 10)
                time.sleep(rng.uniform(0.0, 0.5))
                deployment.replicas[1].kill()
                killed_at = traffic.count("upload acknowledged")
                # The others go on while the balancer notices.
                traffic.wait_for("upload acknowledged", killed_at + 20)
                deployment.replicas[1].start()
                restarted_at = traffic.count("upload acknowledged")
                traffic.wait_for("upload acknowledged", restarted_at + 20)
                traffic.wait_for("body read", traffic.count("body read") + 10)
            finally:
                traffic.finish()
            assert not traffic.defects, f"{dict(traffic.outcomes)}: {traffic.defects[:5]}"
            acknowledged = list(traffic.acknowledged)

            # The restarted replica serves again, and all three agree on the head.
            heads = set()
            for replica in deployment.replicas:
                with httpx.Client(base_url=replica.url, timeout=30) as client:
                    tree_head = client.get("/v1/ledger/head").json()["tree_head"]
                    heads.add((tree_head["tree_size"], tree_head["root"]))
            assert len(heads) == 1, heads

            with httpx.Client(base_url=deployment.url, timeout=60) as client:
                listed = listed_record_ids(Actor(client, patient.identity), patient.pseudonym)
            assert not {u.record_id for u in acknowledged} - listed
            check_every_upload_reads_back(deployment.url, patient.identity, patient, acknowledged)
        finally:
            deployment.stop()

        # Every body a reader received has its allowed access entry on the ledger.
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                events = schema.access_events
                audited = Counter(
                    record_id
                    for (record_id,) in conn.execute(
                        sa.select(events.c.record_id).where(
                            events.c.actor == patient.identity.id,
                            events.c.action == "body",
                            events.c.decision == "allowed",
                        )
                    )
                )
                heights = [h for (h,) in conn.execute(sa.select(schema.blocks.c.height))]
        finally:
            engine.dispose()
        unaudited = {r: n for r, n in traffic.bodies_read.items() if audited[r] < n}
        assert not unaudited, f"bodies read without their access entry: {unaudited}"
        assert sorted(heights) == list(range(len(heights))), "the block heights fork or skip"
        verified = ehrgate("ledger", "verify", "--db", url)
        assert verified.returncode == 0, verified.stdout + verified.stderr

    FIGURES["replica kills survived"] += 1
    FIGURES["uploads acknowledged through the balancer"] += len(acknowledged)
    FIGURES["uploads acknowledged after a retry"] += traffic.outcomes[
        "upload acknowledged after a retry"
    ]
    FIGURES["audited body reads checked"] += sum(traffic.bodies_read.values())
