"""A log for the witness tests: leaves, RFC 9162 roots and proofs, signed checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envelope import SigningKey
from ledger import merkle
from ledger.wire.checkpoints import Checkpoint, sign_checkpoint
from ledger.wire.cosignatures import Cosigner
from ledger.wire.merkle import leaf_hash
from ledger.wire.notes import Ed25519Signer, Verifiers
from ledger.wire.tlog_witness import format_add_checkpoint
from witness import Witness, WitnessState
from witness.config import TrustedLog

ORIGIN = "hospital-a.example/ehrgate"


class TestLog:
    """An append-only log of numbered leaves, signed by its checkpoint key."""

    __test__ = False

    def __init__(self, origin: str = ORIGIN, key: SigningKey | None = None, tag: str = "") -> None:
        self.signer = Ed25519Signer(origin, key or SigningKey.generate())
        self.tag = tag
        self.leaves: list[bytes] = []

    def grow(self, size: int) -> TestLog:
        while len(self.leaves) < size:
            self.leaves.append(leaf_hash(f"{self.tag}entry {len(self.leaves)}".encode()))
        return self

    def _lookup(self, size: int) -> merkle.NodeLookup:
        nodes = merkle.nodes_from_leaf_hashes(self.leaves[:size])
        return lambda level, index: nodes[(level, index)]

    def root(self, size: int) -> bytes:
        return merkle.root_from_nodes(size, self._lookup(size))

    def checkpoint(self, size: int) -> Checkpoint:
        return Checkpoint(self.signer.name, size, self.root(size))

    def note(self, size: int) -> bytes:
        return sign_checkpoint(self.checkpoint(size), self.signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        if old == 0 or old == new:
            return []
        return merkle.consistency_proof(old, new, self._lookup(new))

    def request(self, old: int, new: int) -> bytes:
        return format_add_checkpoint(old, self.proof(old, new), self.note(new))

    def trusted(self) -> TrustedLog:
        return TrustedLog(self.signer.name, Verifiers([self.signer.verifier]))


class Clock:
    def __init__(self, now: float = 1_780_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def open_test_witness(
    database: Path, *logs: TestLog, cosigner: Cosigner | None = None, clock: Clock | None = None
) -> Iterator[Witness]:
    state = WitnessState(database)
    try:
        yield Witness(
            cosigner or Cosigner.generate("witness.hospital-b.example"),
            {log.signer.name: log.trusted() for log in logs},
            state,
            clock=clock or Clock(),
        )
    finally:
        state.close()
