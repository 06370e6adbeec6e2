"""The gateway asks each witness over one kept-alive connection, under real uvicorn.

A connection kept between rounds must not weaken anything: a witness restarted between
two rounds (the kept connection is then dead) is asked again on a new one at once, the
409 path still catches a witness up, and a restarted witness still never cosigns a
smaller tree than the one it kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ehrgate.embedded import free_port, serve_app
from envelope import SigningKey
from gateway.witness_connections import WitnessConnection, WitnessUnreachable
from gateway.witnessing import CheckpointWitnessing
from ledger.wire.blocks import Block
from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import Verifiers, open_note
from tests.witness.helpers import TestLog
from witness import Witness, WitnessState, create_witness_app

COSIGNER = Cosigner("witness.hospital-b.example", SigningKey(bytes(range(1, 33))))


class Ledger:
    """What witnessing reads of a ledger: the head and consistency proofs of a test log."""

    def __init__(self, log: TestLog, size: int) -> None:
        self.log, self.size, self._key = log, size, SigningKey.generate()

    def head(self) -> Block:
        return Block.signed(
            self._key, height=0, previous_hash=bytes(32), tree_size=self.size,
            root=self.log.root(self.size), timestamp="2026-03-01T09:00:00.000000Z",
        )  # fmt: skip

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self.log.proof(old_size, self.size if new_size is None else new_size)


@pytest.fixture
def log() -> TestLog:
    return TestLog().grow(64)


@contextmanager
def witness_on(port: int, database: Path, log: TestLog) -> Iterator[str]:
    """A witness of *log* under uvicorn on *port*, its state in *database*."""
    witness = Witness(COSIGNER, {log.signer.name: log.trusted()}, WitnessState(database))
    with serve_app(create_witness_app(witness), port, "uvicorn", timeout=20) as url:
        yield url


def submitter(ledger: Ledger, url: str) -> CheckpointWitnessing:
    return CheckpointWitnessing(ledger, ledger.log.signer, [(url, COSIGNER.verifier)])


def cosigned_size(witnessing: CheckpointWitnessing, log: TestLog) -> int | None:
    note = witnessing.cosigned_note()
    if note is None:
        return None
    opened = open_note(note, Verifiers([log.signer.verifier, COSIGNER.verifier]))
    if len(opened.verified) != 2:
        return None
    return int(opened.text.split("\n")[1])


def connection_of(witnessing: CheckpointWitnessing) -> WitnessConnection:
    (connection,) = witnessing._connections
    return connection


def test_rounds_reuse_one_connection_per_witness(tmp_path: Path, log: TestLog) -> None:
    ledger = Ledger(log, 5)
    with witness_on(free_port(), tmp_path / "w.db", log) as url:
        witnessing = submitter(ledger, url)
        for size in (5, 12, 13, 40):
            ledger.size = size
            witnessing.submit_round(now=0)
            assert cosigned_size(witnessing, log) == size
        assert connection_of(witnessing).opened == 1
        witnessing.stop()


def test_a_witness_restarted_between_rounds_is_asked_again_on_a_new_connection(
    tmp_path: Path, log: TestLog
) -> None:
    ledger, port = Ledger(log, 5), free_port()
    with witness_on(port, tmp_path / "w.db", log) as url:
        witnessing = submitter(ledger, url)
        witnessing.submit_round(now=0)
    with witness_on(port, tmp_path / "w.db", log):
        ledger.size = 9
        witnessing.submit_round(now=0)  # the kept connection died with the first server
        assert cosigned_size(witnessing, log) == 9
        assert connection_of(witnessing).opened == 2
        assert all(w.failures == 0 for w in witnessing._witnesses)  # no backoff taken
    witnessing.stop()


def test_the_409_path_catches_a_witness_up_over_the_connection(
    tmp_path: Path, log: TestLog
) -> None:
    ledger = Ledger(log, 20)
    with witness_on(free_port(), tmp_path / "w.db", log) as url:
        first = submitter(ledger, url)
        first.submit_round(now=0)
        first.stop()
        ledger.size = 30
        restarted = submitter(ledger, url)  # a restarted gateway: it asks from old 0
        restarted.submit_round(now=0)
        assert cosigned_size(restarted, log) == 30  # 409 "20", then the proof 20 → 30
        assert connection_of(restarted).opened == 1
        restarted.stop()


def test_a_restarted_witness_never_cosigns_a_smaller_tree_over_a_new_connection(
    tmp_path: Path, log: TestLog
) -> None:
    port = free_port()
    with witness_on(port, tmp_path / "w.db", log) as url:
        ahead = submitter(Ledger(log, 40), url)
        ahead.submit_round(now=0)
        ahead.stop()
    with witness_on(port, tmp_path / "w.db", log) as url:
        behind = submitter(Ledger(log, 25), url)  # a log rolled back to 25 entries
        behind.submit_round(now=0)
        assert behind.cosigned_note() is None
        assert behind._witnesses[0].failures == 1
        behind.stop()


def test_a_witness_that_is_down_is_unreachable_not_retried_forever() -> None:
    connection = WitnessConnection(f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(WitnessUnreachable):
        connection.add_checkpoint(b"old 0\n\n")
    assert connection.opened == 1


def test_a_witness_url_is_http_or_https() -> None:
    with pytest.raises(ValueError, match="http"):
        WitnessConnection("ftp://witness.example", timeout=5)


def test_concurrent_requests_share_the_connection_one_at_a_time(
    tmp_path: Path, log: TestLog
) -> None:
    with witness_on(free_port(), tmp_path / "w.db", log) as url:
        connection = WitnessConnection(url, timeout=10)
        statuses: list[int] = []

        def ask() -> None:
            for _ in range(5):
                status, _, _ = connection.add_checkpoint(log.request(7, 9))
                statuses.append(status)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [409] * 20  # the witness knows 0, not 7: each answer whole
        assert connection.opened == 1
        connection.close()
