"""Witness cosignatures kept in the ledger's database, and what a restarted gateway does
with them: serves the cosigned checkpoint at once, asks each witness from the size it last
cosigned, and serves nothing the log does not extend or the witness key does not verify.

The unit tests use a real witness (SQLite) through an in-process transport and the table on
SQLite and PostgreSQL; the last test restarts a real gateway (uvicorn) with its witness
down, so the cosignature it serves can only come from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ehrgate.witness_policy import WitnessPolicy
from envelope import IdentityKeys, load_key_file
from gateway.bootstrap import ensure_first_start
from gateway.kept_cosignatures import KeptCosignatures
from gateway.schema import cosignatures
from gateway.witnessing import KEEP_GAP, CheckpointWitnessing
from ledger import database
from ledger.migrate import upgrade
from ledger.wire.cosignatures import Cosigner
from ledger.wire.notes import Verifiers, open_note
from tests.federation.hospitals import (
    LoopbackServer,
    append,
    gateway_app,
    gateway_settings,
    served_checkpoint,
    wait_for_quorum,
    witness_app,
)
from tests.gateway.test_witnessing import COSIGNER, Ledger, Recorder, witnessing as witnessing_of
from tests.witness.helpers import TestLog, open_test_witness
from witness import Witness, write_witness_key

OTHER = Cosigner.generate("witness.hospital-c.example")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade(database_url)
    engine = database.create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def log() -> TestLog:
    return TestLog().grow(64)


@pytest.fixture
def witness(tmp_path: Path, log: TestLog) -> Iterator[Witness]:
    with open_test_witness(tmp_path / "w.db", log, cosigner=COSIGNER) as w:
        yield w


def witnessing(ledger: Ledger, recorder: Recorder, engine: Engine) -> CheckpointWitnessing:
    return witnessing_of(ledger, recorder, KeptCosignatures(engine))


def _rows(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        query = sa.select(cosignatures.c.tree_size, cosignatures.c.witness)
        return [(int(s), w) for s, w in conn.execute(query.order_by(cosignatures.c.tree_size))]


def test_every_cosignature_is_kept_as_evidence(
    log: TestLog, witness: Witness, engine: Engine
) -> None:
    ledger, recorder = Ledger(log, 5), Recorder(witness)
    submitter = witnessing(ledger, recorder, engine)
    for size in (5, 9, 12):
        ledger.size = size
        submitter.submit_round(now=size)
    submitter.submit_round(now=20)  # nothing new: nothing asked, nothing added
    name = COSIGNER.verifier.name
    assert _rows(engine) == [(5, name), (9, name), (12, name)]
    kept = KeptCosignatures(engine).latest(log.signer.name, 10)
    assert [checkpoint.size for checkpoint, _ in kept] == [12, 9, 5]
    for checkpoint, signature in kept:  # each row is the witness's valid cosignature
        assert COSIGNER.verifier.verify(checkpoint.body(), signature.signature)


def test_cosignatures_are_written_at_most_every_keep_gap_and_at_stop(
    log: TestLog, witness: Witness, engine: Engine
) -> None:
    ledger = Ledger(log, 5)
    submitter = witnessing(ledger, Recorder(witness), engine)
    submitter.submit_round(now=100.0)  # the first: written at once
    ledger.size = 9
    submitter.submit_round(now=100.2)
    ledger.size = 12
    submitter.submit_round(now=100.4)
    assert [size for size, _ in _rows(engine)] == [5]  # within KEEP_GAP: waiting
    submitter.submit_round(now=100.0 + KEEP_GAP)  # nothing new to submit; the wait is over
    assert [size for size, _ in _rows(engine)] == [5, 9, 12]
    ledger.size = 20
    submitter.submit_round(now=101.5)
    submitter.stop()  # what waits is written at stop
    assert [size for size, _ in _rows(engine)] == [5, 9, 12, 20]


def test_a_restarted_gateway_serves_the_kept_cosigned_checkpoint_at_once(
    log: TestLog, witness: Witness, engine: Engine
) -> None:
    ledger = Ledger(log, 12)
    witnessing(ledger, Recorder(witness), engine).submit_round(now=0)

    recorder = Recorder(witness)
    restarted = witnessing(ledger, recorder, engine)
    assert restarted.restore() == 1
    note = restarted.cosigned_note()
    assert note is not None
    assert open_note(note, Verifiers([COSIGNER.verifier])).text == log.checkpoint(12).text()
    restarted.submit_round(now=0)
    assert recorder.olds == []  # the witness already cosigned this checkpoint: not asked
    ledger.size = 20
    restarted.submit_round(now=1)
    assert recorder.olds == [12]  # from the size it cosigned: no 409 round first


def test_a_kept_checkpoint_the_log_does_not_extend_is_not_served(
    log: TestLog, witness: Witness, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    witnessing(Ledger(log, 12), Recorder(witness), engine).submit_round(now=0)
    # The database now holds another log of the same origin (restored from an older copy
    # and extended differently): the kept checkpoint is not part of it.
    other = TestLog(log.signer.name, tag="other").grow(20)
    restarted = witnessing(Ledger(other, 20), Recorder(witness), engine)
    with caplog.at_level(logging.ERROR, logger="gateway.witnessing"):
        assert restarted.restore() == 0
    assert "not part of the log" in caplog.text
    assert restarted.cosigned_note() is None


def test_a_kept_checkpoint_larger_than_the_log_is_an_alarm(
    log: TestLog, witness: Witness, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    witnessing(Ledger(log, 12), Recorder(witness), engine).submit_round(now=0)
    restarted = witnessing(Ledger(log, 8), Recorder(witness), engine)  # entries lost
    with caplog.at_level(logging.ERROR, logger="gateway.witnessing"):
        assert restarted.restore() == 0
    assert "the database lost entries" in caplog.text
    assert restarted.cosigned_note() is None


def test_a_tampered_row_or_an_unconfigured_witness_is_not_served(
    log: TestLog, witness: Witness, engine: Engine
) -> None:
    ledger = Ledger(log, 12)
    witnessing(ledger, Recorder(witness), engine).submit_round(now=0)
    with engine.begin() as conn:
        (line,) = conn.execute(sa.select(cosignatures.c.line)).one()
        forged = line[:-6] + ("AAAAA=" if not line.endswith("AAAAA=") else "BBBBB=")
        conn.execute(cosignatures.update().values(line=forged))
    assert witnessing(ledger, Recorder(witness), engine).restore() == 0

    with engine.begin() as conn:
        conn.execute(cosignatures.update().values(line=line))
    elsewhere = CheckpointWitnessing(
        ledger,
        log.signer,
        [("http://witness.test", OTHER.verifier)],  # the kept witness is no longer configured
        transport=httpx.MockTransport(Recorder(witness)),
        kept=KeptCosignatures(engine),
    )
    assert elsewhere.restore() == 0
    assert witnessing(ledger, Recorder(witness), engine).restore() == 1


def test_a_restarted_gateway_serves_its_cosigned_checkpoint_while_the_witness_is_down(
    tmp_path: Path,
) -> None:
    origin = "hospital-k.example/ehrgate"
    data_dir = tmp_path / "gateway"
    first = ensure_first_start(gateway_settings(data_dir, origin, []))
    home = tmp_path / "witness"
    home.mkdir()
    vkey = write_witness_key(home / "witness.key", "witness.k.example").verifier.vkey()
    (home / "witness.toml").write_text(
        'key_file = "witness.key"\ndatabase = "witness.db"\n\n[[logs]]\n'
        f'origin = "{origin}"\nvkey = "{first.checkpoint_signer.verifier.vkey()}"\n'
    )
    witness_server = LoopbackServer(witness_app(home / "witness.toml")).start()
    settings = gateway_settings(data_dir, origin, [(witness_server.url, vkey)])
    admin = load_key_file(data_dir / "admin.key")
    assert isinstance(admin, IdentityKeys)
    policy = WitnessPolicy.of([vkey], 1)
    gateway = LoopbackServer(gateway_app(settings)).start()
    try:
        size = append(gateway.url, admin, 3, "kept")[-1]
        cosigned, _, _ = wait_for_quorum(gateway.url, policy, size, timeout=15)
        gateway.stop()
        witness_server.stop()  # the witness is down for the whole restart

        gateway = LoopbackServer(gateway_app(settings), gateway.port).start()
        checkpoint, note = served_checkpoint(gateway.url, 1)
        opened = open_note(note, Verifiers([policy.witnesses[0]]))
        assert (checkpoint.size, checkpoint.root) == (cosigned.size, cosigned.root)
        assert [s.name for s in opened.verified] == ["witness.k.example"]
    finally:
        gateway.stop()
        witness_server.stop()
