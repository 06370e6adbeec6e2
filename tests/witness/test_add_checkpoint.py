"""The witness's answers to add-checkpoint, one per rule of C2SP tlog-witness, over HTTP."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envelope import SigningKey
from ledger.wire.checkpoints import Checkpoint, sign_checkpoint
from ledger.wire.cosignatures import Cosigner, cosignature_timestamp
from ledger.wire.merkle import EMPTY_ROOT
from ledger.wire.notes import Ed25519Signer, Verifiers, open_note, parse_note
from ledger.wire.tlog_witness import format_add_checkpoint
from tests.gateway.helpers import TestClient
from tests.witness.helpers import Clock, TestLog, open_test_witness
from witness import Witness, create_witness_app
from witness.app import MAX_BODY

COSIGNER = Cosigner("witness.hospital-b.example", SigningKey(bytes(range(32))))


@pytest.fixture
def log() -> TestLog:
    return TestLog().grow(40)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def witness(tmp_path: Path, log: TestLog, clock: Clock) -> Iterator[Witness]:
    with open_test_witness(tmp_path / "w.db", log, cosigner=COSIGNER, clock=clock) as w:
        yield w


@pytest.fixture
def client(witness: Witness) -> Iterator[TestClient]:
    with TestClient(create_witness_app(witness)) as http:
        yield http


def post(client: TestClient, body: bytes) -> tuple[int, str, str]:
    answer = client.post("/add-checkpoint", content=body)
    return answer.status_code, answer.headers.get("content-type", ""), answer.text


def accepted(client: TestClient, log: TestLog, old: int, new: int) -> str:
    status, _, text = post(client, log.request(old, new))
    assert status == 200, text
    return text


# --- 200 ----------------------------------------------------------------------------------


def test_the_first_checkpoint_is_cosigned(client: TestClient, log: TestLog, clock: Clock) -> None:
    lines = accepted(client, log, 0, 7)
    assert lines.startswith("— witness.hospital-b.example ")
    assert lines.endswith("\n")
    # The client's way to check an answer: append it to the checkpoint and open the note.
    note = log.note(7) + lines.encode()
    opened = open_note(note, Verifiers([COSIGNER.verifier]))
    assert opened.text == log.checkpoint(7).text()
    assert cosignature_timestamp(opened.verified[0]) == int(clock.now)


def test_a_consistent_larger_tree_is_cosigned(
    client: TestClient, witness: Witness, log: TestLog
) -> None:
    accepted(client, log, 0, 7)
    for old, new in [(7, 8), (8, 16), (16, 31), (31, 40)]:
        accepted(client, log, old, new)
    known = witness.state.latest(log.signer.name)
    assert known is not None
    assert (known.size, known.root) == (40, log.root(40))


def test_the_same_checkpoint_again_is_cosigned_again(
    client: TestClient, log: TestLog, clock: Clock
) -> None:
    first = accepted(client, log, 0, 7)
    clock.now += 60
    second = accepted(client, log, 7, 7)
    assert first != second  # a newer timestamp


def test_the_empty_tree_is_cosigned(client: TestClient, log: TestLog) -> None:
    accepted(client, log, 0, 0)
    accepted(client, log, 0, 5)


def test_other_signatures_on_the_checkpoint_are_ignored(client: TestClient, log: TestLog) -> None:
    stranger = Ed25519Signer("someone.example", SigningKey.generate())
    text = log.checkpoint(3).text()
    note = log.note(3) + stranger.sign(text).line().encode()
    assert post(client, format_add_checkpoint(0, [], note))[0] == 200


# --- 404, 403, 400 ------------------------------------------------------------------------


def test_an_unknown_origin_is_404(client: TestClient) -> None:
    other = TestLog("hospital-z.example/ehrgate").grow(3)
    status, _, text = post(client, other.request(0, 3))
    assert status == 404
    assert "hospital-z.example/ehrgate" in text


def test_a_checkpoint_not_signed_by_the_logs_key_is_403(client: TestClient, log: TestLog) -> None:
    impostor = TestLog(log.signer.name).grow(3)  # same origin, another key
    status, _, text = post(client, impostor.request(0, 3))
    assert status == 403
    assert "not signed" in text


def test_a_bad_signature_of_the_logs_key_is_403(client: TestClient, log: TestLog) -> None:
    note = log.note(3)
    forged = note.replace(b"\n3\n", b"\n4\n", 1)  # the text changed under the signature
    status, _, _ = post(client, format_add_checkpoint(0, [], forged))
    assert status == 403


def test_old_larger_than_the_checkpoint_is_400(client: TestClient, log: TestLog) -> None:
    accepted(client, log, 0, 10)
    status, _, text = post(client, format_add_checkpoint(10, [], log.note(5)))
    assert status == 400
    assert "larger" in text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 1",
        b"old 01\n\n",
        b"new 1\n\n",
        b"old 0\nnot-a-hash\n\n",
        b"old 0\n\nnot a note\n",
        b"old 0\n\n\xff\xfe\n\n\xe2\x80\x94 x AAAAAAA=\n",
    ],
)
def test_malformed_requests_are_400(client: TestClient, body: bytes) -> None:
    assert post(client, body)[0] == 400


def test_a_malformed_checkpoint_text_is_400(client: TestClient, log: TestLog) -> None:
    text = f"{log.signer.name}\n007\n{'A' * 43}=\n"
    note = text.encode() + b"\n" + log.signer.sign(text).line().encode()
    assert post(client, format_add_checkpoint(0, [], note))[0] == 400


def test_an_oversized_body_is_413(client: TestClient) -> None:
    assert post(client, b"old 0\n" + b"A" * (MAX_BODY + 1))[0] == 413


# --- 409 ----------------------------------------------------------------------------------


def test_an_old_size_other_than_the_known_one_is_409_with_that_size(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 10)
    status, content_type, text = post(client, log.request(8, 20))
    assert (status, content_type, text) == (409, "text/x.tlog.size", "10\n")
    # A log that knows nothing may ask with old 0 and learn the size the same way.
    assert post(client, log.request(0, 20))[:3] == (409, "text/x.tlog.size", "10\n")
    assert post(client, log.request(10, 20))[0] == 200


def test_a_never_seen_log_answers_409_with_zero(client: TestClient, log: TestLog) -> None:
    assert post(client, log.request(5, 10))[1:] == ("text/x.tlog.size", "0\n")


# --- 422 and the evidence kept ------------------------------------------------------------


def test_a_bad_consistency_proof_is_422_and_changes_nothing(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 10)
    proof = log.proof(10, 20)
    proof[0] = bytes(32)
    status, _, text = post(client, format_add_checkpoint(10, proof, log.note(20)))
    assert status == 422
    assert "consistency proof" in text
    known = witness.state.latest(log.signer.name)
    assert known is not None
    assert known.size == 10
    (evidence,) = witness.state.evidence(log.signer.name)
    assert evidence.kind == "inconsistent"
    assert evidence.submitted_note == log.note(20)


def test_a_proof_of_the_wrong_length_is_422(client: TestClient, log: TestLog) -> None:
    accepted(client, log, 0, 10)
    proof = log.proof(10, 20)
    assert post(client, format_add_checkpoint(10, proof[:-1], log.note(20)))[0] == 422
    assert post(client, format_add_checkpoint(10, [*proof, bytes(32)], log.note(20)))[0] == 422


def test_a_forked_log_is_422_and_both_checkpoints_are_kept(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 10)
    fork = TestLog(log.signer.name, log.signer.key, tag="rewritten ").grow(10)
    status, _, text = post(client, fork.request(10, 10))
    assert status == 422
    assert "forked" in text
    (evidence,) = witness.state.evidence()
    assert evidence.kind == "same-size-other-root"
    assert evidence.known_note is not None
    # Both are signed by the log's own key: proof of equivocation for anyone.
    trusted = Verifiers([log.signer.verifier])
    known = parse_note(evidence.known_note)
    assert Checkpoint.from_text(known.text).root == log.root(10)
    assert open_note(evidence.submitted_note, trusted).text == fork.checkpoint(10).text()


def test_a_rewritten_log_cannot_extend_the_known_tree(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 10)
    rewritten = TestLog(log.signer.name, log.signer.key, tag="rewritten ").grow(20)
    assert post(client, rewritten.request(10, 20))[0] == 422
    assert witness.state.latest(log.signer.name).size == 10  # type: ignore[union-attr]


def test_evidence_is_kept_once_however_often_it_is_sent(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 10)
    fork = TestLog(log.signer.name, log.signer.key, tag="rewritten ").grow(10)
    for _ in range(3):
        assert post(client, fork.request(10, 10))[0] == 422
    assert len(witness.state.evidence()) == 1


def test_a_malformed_proof_is_refused_but_not_kept(
    client: TestClient, log: TestLog, witness: Witness
) -> None:
    accepted(client, log, 0, 5)
    assert post(client, format_add_checkpoint(5, [bytes(32)], log.note(5)))[0] == 422
    assert witness.state.evidence() == []


def test_a_proof_from_size_zero_is_422(client: TestClient, log: TestLog) -> None:
    status, _, text = post(client, format_add_checkpoint(0, [bytes(32)], log.note(5)))
    assert status == 422
    assert "size 0" in text


def test_a_proof_between_equal_sizes_is_422(client: TestClient, log: TestLog) -> None:
    accepted(client, log, 0, 5)
    assert post(client, format_add_checkpoint(5, [bytes(32)], log.note(5)))[0] == 422


def test_the_empty_tree_with_another_root_is_422(client: TestClient, log: TestLog) -> None:
    bogus = sign_checkpoint(Checkpoint(log.signer.name, 0, bytes(32)), log.signer)
    assert post(client, format_add_checkpoint(0, [], bogus))[0] == 422
    empty = sign_checkpoint(Checkpoint(log.signer.name, 0, EMPTY_ROOT), log.signer)
    assert post(client, format_add_checkpoint(0, [], empty))[0] == 200


# --- never smaller, never twice at once ---------------------------------------------------


def test_after_a_restart_it_never_cosigns_a_smaller_tree(
    tmp_path: Path, log: TestLog, clock: Clock
) -> None:
    with open_test_witness(tmp_path / "w.db", log, clock=clock) as first:
        first.add_checkpoint(log.request(0, 30))
    with (
        open_test_witness(tmp_path / "w.db", log, clock=clock) as again,
        TestClient(create_witness_app(again)) as client,
    ):
        assert post(client, log.request(0, 20))[:3] == (409, "text/x.tlog.size", "30\n")
        assert post(client, log.request(20, 20))[0] == 409
        assert post(client, format_add_checkpoint(30, [], log.note(20)))[0] == 400
        assert post(client, log.request(30, 35))[0] == 200


def test_concurrent_submissions_from_one_size_cosign_exactly_one(
    witness: Witness, log: TestLog
) -> None:
    witness.add_checkpoint(log.request(0, 10))
    bodies = [log.request(10, new) for new in range(11, 31)]
    outcomes: dict[int, int] = {}
    barrier = threading.Barrier(len(bodies))

    def submit(new: int, body: bytes) -> None:
        from witness import Refused

        barrier.wait()
        try:
            witness.add_checkpoint(body)
            outcomes[new] = 200
        except Refused as refused:
            outcomes[new] = refused.status

    threads = [threading.Thread(target=submit, args=(11 + i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == len(bodies)  # every request got an answer of the protocol
    winners = [new for new, status in outcomes.items() if status == 200]
    assert len(winners) == 1
    assert sorted(set(outcomes.values())) == [200, 409]
    assert witness.state.latest(log.signer.name).size == winners[0]  # type: ignore[union-attr]


# --- the monitoring view ------------------------------------------------------------------


def test_the_latest_cosigned_checkpoint_is_served_by_origin_hash(
    client: TestClient, log: TestLog
) -> None:
    path = f"/{hashlib.sha256(log.signer.name.encode()).hexdigest()}/checkpoint"
    assert client.get(path).status_code == 404
    accepted(client, log, 0, 12)
    served = client.get(path)
    assert served.status_code == 200
    note = served.content
    assert open_note(note, Verifiers([log.signer.verifier])).text == log.checkpoint(12).text()
    assert open_note(note, Verifiers([COSIGNER.verifier])).verified
    assert client.get("/" + "0" * 64 + "/checkpoint").status_code == 404
