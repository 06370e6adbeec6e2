"""The gateway's side of witnessing: submissions, the 409 path, refusals and backoff.

A real witness (`witness.Witness` on SQLite) answers through an in-process transport; the
log is a test log with real RFC 9162 roots and proofs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from envelope import SigningKey
from gateway.kept_cosignatures import KeptCosignatures
from gateway.witnessing import CheckpointWitnessing
from ledger.wire.blocks import Block
from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import Verifiers, open_note
from tests.witness.helpers import TestLog, open_test_witness
from witness import Refused, Witness

COSIGNER = Cosigner("witness.hospital-b.example", SigningKey(bytes(range(1, 33))))


class Ledger:
    """The part of the ledger witnessing reads: the head and consistency proofs."""

    def __init__(self, log: TestLog, size: int) -> None:
        self.log, self.size, self._key = log, size, SigningKey.generate()

    def head(self) -> Block:
        root = self.log.root(self.size)
        return Block.signed(
            self._key, height=0, previous_hash=bytes(32), tree_size=self.size, root=root,
            timestamp="2026-03-01T09:00:00.000000Z",
        )  # fmt: skip

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self.log.proof(old_size, self.size if new_size is None else new_size)


class Recorder:
    """Forwards requests to a witness and remembers the old sizes asked with."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness
        self.olds: list[int] = []
        self.forge = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.olds.append(int(request.content.split(b"\n", 1)[0].split(b" ")[1]))
        try:
            body = self.witness.add_checkpoint(request.content)
        except Refused as refused:
            return httpx.Response(
                refused.status, content=refused.body, headers={"content-type": refused.content_type}
            )
        if self.forge:
            body = body[:-10] + b"AAAAAAAAA\n"
        return httpx.Response(200, content=body)


@pytest.fixture
def log() -> TestLog:
    return TestLog().grow(64)


@pytest.fixture
def witness(tmp_path: Path, log: TestLog) -> Iterator[Witness]:
    with open_test_witness(tmp_path / "w.db", log, cosigner=COSIGNER) as w:
        yield w


def witnessing(
    ledger: Ledger, recorder: Recorder, kept: KeptCosignatures | None = None
) -> CheckpointWitnessing:
    """Witnessing of *ledger* by the one witness *recorder* forwards to (keeping its
    cosignatures in *kept*, if given)."""
    return CheckpointWitnessing(
        ledger,
        ledger.log.signer,
        [("http://witness.test", COSIGNER.verifier)],
        interval=1.0,
        transport=httpx.MockTransport(recorder),
        kept=kept,
    )


def test_checkpoints_are_submitted_from_the_last_cosigned_size(
    log: TestLog, witness: Witness
) -> None:
    ledger, recorder = Ledger(log, 5), Recorder(witness)
    submitter = witnessing(ledger, recorder)
    assert submitter.cosigned_note() is None
    submitter.submit_round(now=0)
    ledger.size = 12
    submitter.submit_round(now=1)
    submitter.submit_round(now=2)  # nothing new: no request
    assert recorder.olds == [0, 5]
    note = submitter.cosigned_note()
    assert note is not None
    assert open_note(note, Verifiers([COSIGNER.verifier])).text == log.checkpoint(12).text()
    assert open_note(note, Verifiers([log.signer.verifier])).verified


def test_a_restarted_gateway_learns_the_size_from_409(log: TestLog, witness: Witness) -> None:
    witness.add_checkpoint(log.request(0, 20))
    recorder = Recorder(witness)
    submitter = witnessing(Ledger(log, 33), recorder)
    submitter.submit_round(now=0)
    assert recorder.olds == [0, 20]
    assert submitter.cosigned_note() is not None


def test_a_witness_ahead_of_the_log_is_an_alarm_never_followed(
    log: TestLog, witness: Witness, caplog: pytest.LogCaptureFixture
) -> None:
    witness.add_checkpoint(log.request(0, 30))
    recorder = Recorder(witness)
    submitter = witnessing(Ledger(log, 20), recorder)
    with caplog.at_level(logging.WARNING, logger="gateway.witnessing"):
        submitter.submit_round(now=0)
    assert "rolled back or forked" in caplog.text
    assert recorder.olds == [0]  # the 409; no request from a size the log does not have
    assert submitter.cosigned_note() is None


def test_an_answer_without_a_valid_cosignature_is_not_kept(log: TestLog, witness: Witness) -> None:
    recorder = Recorder(witness)
    recorder.forge = True
    submitter = witnessing(Ledger(log, 7), recorder)
    submitter.submit_round(now=0)
    assert submitter.cosigned_note() is None


def test_a_refused_submission_is_retried_after_a_backoff(log: TestLog, witness: Witness) -> None:
    impostor = TestLog(log.signer.name).grow(8)  # not the key the witness trusts: 403
    recorder = Recorder(witness)
    submitter = witnessing(Ledger(impostor, 8), recorder)
    submitter.submit_round(now=0)
    submitter.submit_round(now=1)  # within the backoff: not asked again
    assert len(recorder.olds) == 1
    submitter.submit_round(now=10)
    assert len(recorder.olds) == 2


def test_the_served_checkpoint_is_the_largest_with_the_readers_quorum(
    tmp_path: Path, log: TestLog
) -> None:
    """Two witnesses cosign size 10; one of them also 20 (the other is down): a reader
    that needs 2 gets 10, a reader that needs 1 gets 20; the history keeps both."""
    second = Cosigner("witness.hospital-c.example", SigningKey(bytes(range(2, 34))))
    with (
        open_test_witness(tmp_path / "b.db", log, cosigner=COSIGNER) as b,
        open_test_witness(tmp_path / "c.db", log, cosigner=second) as c,
    ):
        recorders = {"b": Recorder(b), "c": Recorder(c)}
        down = {"c": False}

        def route(request: httpx.Request) -> httpx.Response:
            name = request.url.host.split(".")[0]
            if down.get(name):
                raise httpx.ConnectError("down", request=request)
            return recorders[name](request)

        ledger = Ledger(log, 10)
        submitter = CheckpointWitnessing(
            ledger,
            log.signer,
            [("http://b.test", COSIGNER.verifier), ("http://c.test", second.verifier)],
            transport=httpx.MockTransport(route),
        )
        try:
            submitter.submit_round(now=0)
            ledger.size, down["c"] = 20, True
            submitter.submit_round(now=1)
            both = Verifiers([COSIGNER.verifier, second.verifier])
            for minimum, size, count in ((2, 10, 2), (1, 20, 1), (3, 10, 2)):
                note = submitter.cosigned_note(minimum)
                assert note is not None
                opened = open_note(note, both)
                assert opened.text == log.checkpoint(size).text()
                assert len(opened.verified) == count
        finally:
            submitter.stop()
