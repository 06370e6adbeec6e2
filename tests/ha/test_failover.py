"""The primary PostgreSQL node dies during appends; Patroni promotes the replica.

One scenario, run twice. A gateway (real uvicorn) keeps its ledger on a two-node Patroni
cluster (etcd on loopback) through a libpq multi-host URL with
`target_session_attrs=read-write`, and submits its checkpoints to two witnesses. Entries
are appended and cosigned; then the replica's WAL receiver is stalled (the replica lags,
as it would on a slow network), appends go on, and the primary is SIGKILLed mid-append
(with the stalled receiver: the WAL it had not read is lost).

- Synchronous replication (Patroni `synchronous_mode`): no append is receipted while the
  standby has not confirmed it; after the failover every receipted entry is on the new
  primary with a valid inclusion proof, and the next checkpoint extends the cosigned one
  and is cosigned by both witnesses.
- Asynchronous replication: entries are receipted and cosigned while the replica lags, and
  the failover loses them. The loss is found: the entries are missing, the client that
  pinned the cosigned tree refuses the new log, and a witness refuses its checkpoint.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ehrgate import Client
from ehrgate.errors import EhrgateError, SplitView
from ehrgate.models import Receipt
from ehrgate.trust import LedgerPins
from ehrgate.witness_policy import WitnessPolicy
from envelope import IdentityKeys, load_key_file
from gateway import Settings
from gateway.bootstrap import ensure_first_start
from gateway.settings import WitnessEndpoint
from ledger.queries import LedgerQueries, open_read_only
from ledger.wire.blocks import Block
from ledger.wire.checkpoints import checkpoint_of, sign_checkpoint
from ledger.wire.merkle import verify_consistency, verify_inclusion
from ledger.wire.notes import Ed25519Signer
from ledger.wire.tlog_witness import format_add_checkpoint, parse_known_size
from tests.federation.hospitals import LoopbackServer, gateway_app, wait_for_quorum, witness_app
from tests.ha.cluster import Cluster, missing_tools
from witness import write_witness_key

pytestmark = [pytest.mark.ha, pytest.mark.timeout(240)]

ORIGIN = "hospital-ha.example/ehrgate"
FAILOVER_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def _tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's patroni and etcd-server")


@dataclass
class Site:
    cluster: Cluster
    home: Path
    admin: IdentityKeys
    checkpoint_signer: Ed25519Signer
    policy: WitnessPolicy
    witnesses: list[LoopbackServer]
    gateway: LoopbackServer | None = None
    settings: Settings | None = None
    servers: list[LoopbackServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return self.gateway.url

    def start_gateway(self) -> None:
        """Start the gateway (again: on the same port, so clients know it as before)."""
        assert self.settings is not None
        port = self.gateway.port if self.gateway is not None else None
        self.gateway = LoopbackServer(gateway_app(self.settings), port).start()
        self.servers.append(self.gateway)


def _site(tmp_path: Path, synchronous: bool) -> Iterator[Site]:
    cluster = Cluster(size=2, synchronous=synchronous).start()
    servers: list[LoopbackServer] = []
    try:
        settings = Settings(
            data_dir=tmp_path / "gateway",
            database_url=cluster.database_url(),
            log_origin=ORIGIN,
            witness_interval=0.05,
            auth_rate_limit=1_000_000,
        )
        first = ensure_first_start(settings)
        log_vkey = first.checkpoint_signer.verifier.vkey()
        endpoints, vkeys = [], []
        for name in ("w1", "w2"):
            home = tmp_path / name
            home.mkdir()
            vkey = write_witness_key(home / "witness.key", f"{name}.example").verifier.vkey()
            (home / "witness.toml").write_text(
                'key_file = "witness.key"\ndatabase = "witness.db"\n\n'
                f'[[logs]]\norigin = "{ORIGIN}"\nvkey = "{log_vkey}"\n'
            )
            server = LoopbackServer(witness_app(home / "witness.toml")).start()
            servers.append(server)
            endpoints.append(WitnessEndpoint(url=server.url, vkey=vkey))
            vkeys.append(vkey)
        admin = load_key_file(settings.data_dir / "admin.key")
        assert isinstance(admin, IdentityKeys)
        site = Site(
            cluster,
            tmp_path,
            admin,
            first.checkpoint_signer,
            WitnessPolicy.of(vkeys, 2, wait_seconds=20, evidence_dir=tmp_path / "evidence"),
            servers[:],
            settings=settings.model_copy(update={"witnesses": endpoints}),
            servers=servers,
        )
        site.start_gateway()
        yield site
    finally:
        for server in reversed(servers):
            server.stop()
        cluster.stop()


@pytest.fixture
def synchronous_site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, synchronous=True)


@pytest.fixture
def asynchronous_site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, synchronous=False)


class Appender:
    """Appends (enrollments) in a thread until stopped; keeps every receipt it gets."""

    def __init__(self, url: str, admin: IdentityKeys, pins: LedgerPins, prefix: str) -> None:
        self.url, self.admin, self.pins, self.prefix = url, admin, pins, prefix
        self.receipts: list[Receipt] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="appender", daemon=True)

    def start(self) -> Appender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            try:
                with Client(self.url, self.admin, pins=self.pins, timeout=30) as client:
                    while not self._stop.is_set():
                        identity = IdentityKeys.generate(f"{self.prefix}-{count}", "clinician")
                        count += 1
                        self.receipts.append(client.enroll(identity.public()))
            except EhrgateError as exc:
                self.failures.append(str(exc))
                time.sleep(0.1)


def _append(site: Site, pins: LedgerPins, count: int, prefix: str) -> list[Receipt]:
    with Client(site.url, site.admin, pins=pins) as client:
        return [
            client.enroll(IdentityKeys.generate(f"{prefix}-{i}", "clinician").public())
            for i in range(count)
        ]


def _lagging_failover(site: Site, appender: Appender) -> tuple[int, float]:
    """Stall the replica's WAL receiver, start *appender*, kill the primary and the stalled
    receiver (what it had not read never arrives), wait for Patroni to promote the replica:
    the receipts the appender had when the primary died, and how long the failover took."""
    cluster = site.cluster
    primary = cluster.leader()
    assert primary is not None
    replica = next(node for node in cluster.nodes if node is not primary)
    stalled = cluster.stall_receiver(replica)
    try:
        appender.start()
        time.sleep(1.0)  # appends in flight when the primary dies
        receipted = len(appender.receipts)
        cluster.kill(primary)
    finally:
        cluster.drop_receiver(stalled)
    started = time.monotonic()
    promoted = cluster.wait_for_leader(FAILOVER_TIMEOUT, not_=primary)
    assert promoted is replica
    return receipted, time.monotonic() - started


def _refusal(site: Site, pins: LedgerPins) -> str:
    """The error an append meets (after the stale connections of the crash are gone)."""
    deadline = time.monotonic() + 30
    message = ""
    while time.monotonic() < deadline:
        try:
            _append(site, pins, 1, f"refused-{time.monotonic()}")
        except EhrgateError as exc:
            message = str(exc)
            if "the ledger database failed" not in message:
                return message
        time.sleep(0.2)
    return message


def _note(site: Site, block: Block) -> bytes:
    """The log's signed checkpoint of *block*, as the gateway submits it to witnesses."""
    return sign_checkpoint(checkpoint_of(block, ORIGIN), site.checkpoint_signer)


def _pin_witnessed(site: Site, pins: LedgerPins, size: int) -> int:
    """A client with the witness policy reads the cosigned checkpoint (≥ *size*), checks it
    against the one it pinned before, and pins it; its size."""
    with Client(site.url, site.admin, pins=pins, witness_policy=site.policy) as client:
        deadline = time.monotonic() + 20
        while True:
            checkpoint = client.ledger_checkpoint()
            if checkpoint.tree_size >= size or time.monotonic() > deadline:
                return checkpoint.tree_size
            time.sleep(0.05)


def _present(queries: LedgerQueries, receipt: Receipt, size: int, root: bytes) -> bool:
    """Is the receipted entry on the log, at its index, with an inclusion proof to *root*?"""
    if receipt.index >= size:
        return False
    if queries.entry(receipt.index).tx.tx_hash != receipt.tx_hash:
        return False
    proof = queries.inclusion_proof(receipt.index, size)
    verify_inclusion(receipt.index, size, bytes.fromhex(receipt.tx_hash), proof, root)
    return True


def test_synchronous_replication_keeps_every_receipted_entry(synchronous_site: Site) -> None:
    site = synchronous_site
    pins = LedgerPins()
    before = _append(site, pins, 5, "before")
    cosigned, _, _ = wait_for_quorum(site.url, site.policy, before[-1].tree_head.tree_size)
    _pin_witnessed(site, pins, cosigned.size)

    appender = Appender(site.url, site.admin, pins, "during")
    stalled_receipts, failover = _lagging_failover(site, appender)
    # Nothing was receipted while the standby could not confirm: commits waited for it.
    assert stalled_receipts == 0, "a commit was acknowledged without the synchronous standby"

    # The gateway reconnects (the multi-host URL finds the new primary) and appends go on.
    deadline = time.monotonic() + FAILOVER_TIMEOUT
    while len(appender.receipts) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    appender.stop()
    after = _append(site, pins, 3, "after")
    receipts = [*before, *appender.receipts, *after]
    assert len(appender.receipts) >= 5, appender.failures[-3:]

    # The next checkpoint is cosigned by both witnesses and extends the cosigned one.
    checkpoint, _, _ = wait_for_quorum(site.url, site.policy, after[-1].tree_head.tree_size, 30)
    queries = open_read_only(site.cluster.database_url())
    try:
        proof = queries.consistency_proof(cosigned.size, checkpoint.size)
        verify_consistency(cosigned.size, checkpoint.size, cosigned.root, checkpoint.root, proof)
        missing = [
            r.index for r in receipts if not _present(queries, r, checkpoint.size, checkpoint.root)
        ]
    finally:
        queries.close()
    assert missing == []
    # The client that pinned the cosigned checkpoint proves the new one extends it.
    assert _pin_witnessed(site, pins, checkpoint.size) >= checkpoint.size
    assert not (site.home / "evidence").exists()
    assert failover < FAILOVER_TIMEOUT


def test_asynchronous_replication_loses_receipted_entries_and_it_is_found(
    asynchronous_site: Site,
) -> None:
    site = asynchronous_site
    pins = LedgerPins()
    before = _append(site, pins, 5, "before")
    wait_for_quorum(site.url, site.policy, before[-1].tree_head.tree_size)

    appender = Appender(site.url, site.admin, pins, "during")
    primary = site.cluster.leader()
    assert primary is not None
    # Receipts come while the replica lags (nothing waits for it); the witnesses cosign them.
    stalled = site.cluster.stall_receiver(next(n for n in site.cluster.nodes if n is not primary))
    try:
        appender.start()
        deadline = time.monotonic() + 20
        while len(appender.receipts) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(appender.receipts) >= 5, appender.failures[-3:]
        lost_size = appender.receipts[-1].tree_head.tree_size
        lost_checkpoint, _, _ = wait_for_quorum(site.url, site.policy, lost_size)
        _pin_witnessed(site, pins, lost_checkpoint.size)
        site.cluster.kill(primary)
    finally:
        site.cluster.drop_receiver(stalled)
    site.cluster.wait_for_leader(FAILOVER_TIMEOUT, not_=primary)
    appender.stop()
    witness_url = f"{site.witnesses[0].url}/add-checkpoint"

    # 1. Receipted entries are gone from the new primary.
    queries = open_read_only(site.cluster.database_url())
    try:
        head = queries.head()
        assert head is not None
        lost = [
            r.index
            for r in appender.receipts
            if r.tree_head.tree_size <= lost_checkpoint.size
            and not _present(queries, r, head.tree_size, head.root)
        ]
    finally:
        queries.close()
    assert lost, "the replica had every entry: the failure mode was not produced"
    assert head.tree_size < lost_checkpoint.size

    # 2. The running gateway refuses to append on the shorter log (503, with the reason).
    assert "but this process knew" in _refusal(site, pins)

    # 3. The witnesses cosigned more than the new primary has (409 names the size).
    probe = httpx.post(witness_url, content=format_add_checkpoint(0, [], _note(site, head)))
    assert probe.status_code == 409
    witnessed = parse_known_size(probe.content)
    assert witnessed >= lost_checkpoint.size > head.tree_size

    # 4. The operator restarts the gateway; it appends on the shorter log, and the log it
    # now shows does not extend the cosigned checkpoint the client pinned.
    assert site.gateway is not None
    site.gateway.stop()
    site.start_gateway()
    with Client(site.url, site.admin, pins=LedgerPins()) as fresh:
        for i in range(witnessed - head.tree_size + 2):
            fresh.enroll(IdentityKeys.generate(f"after-{i}", "clinician").public())
    with (
        Client(site.url, site.admin, pins=pins, witness_policy=site.policy) as client,
        pytest.raises(SplitView, match="does not extend"),
    ):
        client.ledger_checkpoint()
    assert list((site.home / "evidence").iterdir()), "no evidence of the split view was kept"

    # 5. A witness refuses the new log's checkpoint: no consistency proof leads from the
    # tree it cosigned to the new one.
    queries = open_read_only(site.cluster.database_url())
    try:
        new_head = queries.head()
        assert new_head is not None
        assert new_head.tree_size > witnessed
        proof = queries.consistency_proof(witnessed, new_head.tree_size)
    finally:
        queries.close()
    answer = httpx.post(
        witness_url, content=format_add_checkpoint(witnessed, proof, _note(site, new_head))
    )
    assert answer.status_code == 422, answer.text
