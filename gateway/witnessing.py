"""The log's witnesses: each new checkpoint is submitted to them, their cosignatures kept.

A background thread looks at the ledger's head every `witness_interval` seconds. For each
configured witness (URL and cosigning vkey) that has not cosigned the current size, it
POSTs `<url>/add-checkpoint` (C2SP tlog-witness): `old <size the witness knows>`, the
consistency proof from that size, and the signed checkpoint.

- 200: each answer line that is a valid tlog-cosignature/v1 of the configured witness key
  over this checkpoint is kept; anything else in the answer is ignored.
- 409: the witness knows another size (after a gateway restart, or a lost answer): the
  request is made again at once from that size, with the proof from it. A witness that
  knows a *larger* tree than the log has is an alarm (a rolled-back database, or a fork):
  logged as an error, never "fixed".
- Anything else (422, 403, 404, network errors): logged; retried with a backoff doubling
  from the interval up to `MAX_BACKOFF` seconds.

Cosignatures are kept in memory for the last `HISTORY` checkpoints and, when the gateway
gives a `KeptCosignatures`, in the ledger's database: `restore()` (called by `start`) loads
the kept ones whose checkpoint the log still extends and whose cosignature still verifies
under a configured witness key, so a restarted gateway serves its cosigned checkpoint at
once and asks each witness from the size it last cosigned. New cosignatures are written
at most every `KEEP_GAP` seconds, in one transaction (and at `stop`): under load the
ledger's writer then meets one small write a second, not one a round. `cosigned_note(k)` is
the largest checkpoint at least *k* witnesses cosigned (else the one most cosigned), with
the log's signature and every cosignature on it, so a reader that needs k of n finds one
even while a witness lags. Without kept cosignatures, the first round after a restart
(old 0, 409, proof) collects them again.

Rounds adapt to the load (`RoundPacing`). `wake()` (called after each commit) starts a
round as soon as the previous one is over and the gap after it has passed. The gap grows
with the rate of commits the rounds had to coalesce (commits made while a round was under
way): none while commits come slower than rounds finish (each is submitted at once),
`GAP_PER_RATE` seconds per entry/s of that rate, at most `MAX_GAP` seconds. So once
commits coalesce, rounds per second *fall* as appends per second rise (about
1 / (rate * GAP_PER_RATE), at least 1 / MAX_GAP), and the cost of a round (a signature, a
proof, a request and a cosignature check per witness, the same work on each witness) is
shared by more commits; under sustained load a commit waits at most `MAX_GAP` for its
round to start.
Each witness is asked over its own kept-alive connection (`WitnessConnection`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import httpx

from gateway.kept_cosignatures import KeptCosignatures
from gateway.witness_connections import WitnessConnection, WitnessUnreachable
from ledger.errors import NoteError, ProofError
from ledger.wire.blocks import Block
from ledger.wire.checkpoints import Checkpoint, checkpoint_of
from ledger.wire.clock import format_time, system_clock
from ledger.wire.cosignatures import CosignatureVerifier
from ledger.wire.merkle import verify_consistency
from ledger.wire.notes import Ed25519Signer, Note, NoteSignature
from ledger.wire.tlog_witness import SIZE_CONTENT_TYPE, format_add_checkpoint, parse_known_size

log = logging.getLogger("gateway.witnessing")

MAX_BACKOFF = 60.0
HISTORY = 64  # checkpoints whose cosignatures are kept
GAP_PER_RATE = 0.0025  # seconds of gap between rounds per entry/s they coalesce
MAX_GAP = 0.1  # seconds: the largest gap between the starts of two rounds
KEEP_GAP = 1.0  # seconds between two writes of new cosignatures to the database
UNKEPT_LIMIT = 4096  # cosignatures waiting to be written while the database fails


class LogSource(Protocol):
    def head(self) -> Block | None: ...

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]: ...


Post = Callable[[bytes], tuple[int, str, bytes]]  # add-checkpoint body -> status, type, body


@dataclass
class _Witness:
    url: str
    verifier: CosignatureVerifier
    post: Post

    @property
    def key(self) -> str:
        """The witness as its cosignatures name it (a URL may change, the key may not)."""
        return f"{self.verifier.name}+{self.verifier.key_id.hex()}"

    known_size: int | None = None  # None: not asked yet (the first request says old 0)
    cosigned: tuple[Checkpoint, NoteSignature] | None = None
    failures: int = 0
    next_attempt: float = 0.0


class WitnessRefused(Exception):
    """A witness answered with something else than a cosignature (status and text)."""


class CheckpointWitnessing:
    """Submits the log's checkpoints to its witnesses; thread-safe."""

    def __init__(
        self,
        ledger: LogSource,
        signer: Ed25519Signer,
        witnesses: Sequence[tuple[str, CosignatureVerifier]],
        *,
        interval: float = 2.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        kept: KeptCosignatures | None = None,
    ) -> None:
        self.ledger = ledger
        self.kept = kept
        self.signer = signer
        self.interval = interval
        # A given transport (tests) is used through httpx; otherwise each witness has its
        # own kept-alive connection (a third of httpx's CPU per request).
        self._http = httpx.Client(timeout=timeout, transport=transport) if transport else None
        self._connections: list[WitnessConnection] = []
        self._witnesses = []
        for url, verifier in witnesses:
            url = url.rstrip("/")
            if self._http is not None:
                post = _httpx_post(self._http, url)
            else:
                connection = WitnessConnection(url, timeout)
                self._connections.append(connection)
                post = connection.add_checkpoint
            self._witnesses.append(_Witness(url, verifier, post))
        self.pacing = RoundPacing()
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, len(self._witnesses)), thread_name_prefix="witnessing"
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._history: OrderedDict[Checkpoint, dict[str, NoteSignature]] = OrderedDict()
        self._unkept: list[tuple[Checkpoint, NoteSignature]] = []
        self._kept_at = float("-inf")
        self._thread: threading.Thread | None = None

    # --- running ----------------------------------------------------------------------

    def start(self) -> None:
        if self.kept is not None:
            try:
                self.restore()
            except Exception:  # the database failed: the first round asks the witnesses
                log.exception("cannot read the kept cosignatures")
        self._thread = threading.Thread(target=self._run, name="witnessing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        if self._http is not None:
            self._http.close()
        for connection in self._connections:
            connection.close()
        self.keep_new(time.monotonic(), force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            gap = 0.0
            try:
                size = self.submit_round(started)
                gap = self.pacing.gap_after(size, started)
            except Exception:  # the ledger failed: logged, tried again next round
                log.exception("cannot read the ledger head to submit a checkpoint")
            self._wake.wait(self.interval)
            rest = gap - (time.monotonic() - started)
            if rest > 0 and not self._stop.is_set():
                self._stop.wait(rest)  # the commits of this gap share the next round
            self._wake.clear()

    def wake(self) -> None:
        """A block was committed: submit its checkpoint now rather than at the interval."""
        self._wake.set()

    def submit_round(self, now: float | None = None) -> int:
        """Submit the current checkpoint, at once to every witness that is due and lacks
        it (in parallel: the round takes as long as the slowest witness, not their sum);
        the checkpoint's size."""
        checkpoint = checkpoint_of(self.ledger.head(), self.signer.name)
        now = time.monotonic() if now is None else now
        self.keep_new(now)
        due = []
        for witness in self._witnesses:
            with self._lock:
                done = witness.cosigned is not None and witness.cosigned[0] == checkpoint
            if not done and now >= witness.next_attempt:
                due.append(witness)
        if not due:
            return checkpoint.size
        shared = _Round(self, checkpoint)
        if len(due) == 1:
            answers = [self._submit_to(due[0], shared, now)]
        else:
            answers = list(self._pool.map(lambda w: self._submit_to(w, shared, now), due))
        if self.kept is not None:
            with self._lock:
                self._unkept += [(checkpoint, s) for s in answers if s is not None]
            self.keep_new(now)
        return checkpoint.size

    def keep_new(self, now: float, *, force: bool = False) -> None:
        """Write the cosignatures not yet kept, if `KEEP_GAP` seconds passed since the last
        write (or *force*); a failed write is tried again later."""
        if self.kept is None:
            return
        with self._lock:
            if not self._unkept or (not force and now - self._kept_at < KEEP_GAP):
                return
            batch, self._unkept, self._kept_at = self._unkept, [], now
        try:
            self.kept.keep(batch, format_time(system_clock()))
        except Exception:  # served from memory all the same; written at a later round
            log.exception("cannot keep %d witness cosignatures", len(batch))
            with self._lock:
                self._unkept = (batch + self._unkept)[-UNKEPT_LIMIT:]

    def _submit_to(self, witness: _Witness, shared: _Round, now: float) -> NoteSignature | None:
        checkpoint = shared.checkpoint
        try:
            signature = self._submit(witness, shared)
        except (WitnessRefused, WitnessUnreachable, httpx.HTTPError, NoteError) as exc:
            witness.failures += 1
            delay = min(MAX_BACKOFF, self.interval * 2**witness.failures)
            witness.next_attempt = now + delay
            log.warning("witness %s: %s (next try in %.0f s)", witness.url, exc, delay)
            return None
        self._remember(witness, checkpoint, signature)
        witness.failures, witness.next_attempt = 0, 0.0
        return signature

    def _remember(
        self, witness: _Witness, checkpoint: Checkpoint, signature: NoteSignature
    ) -> None:
        # Checkpoints come in order of size (rounds follow the log; `restore` loads the
        # kept ones smallest first), so the oldest entry of the history is the smallest.
        with self._lock:
            if witness.cosigned is None or witness.cosigned[0].size <= checkpoint.size:
                witness.cosigned = (checkpoint, signature)
            self._history.setdefault(checkpoint, {})[witness.key] = signature
            self._history.move_to_end(checkpoint)
            while len(self._history) > HISTORY:
                self._history.popitem(last=False)

    def restore(self) -> int:
        """Load the kept cosignatures (see the module's text); how many were loaded."""
        if self.kept is None:
            return 0
        head = checkpoint_of(self.ledger.head(), self.signer.name)
        by_key = {witness.key: witness for witness in self._witnesses}
        extends: dict[Checkpoint, bool] = {}
        loaded = 0
        for checkpoint, signature in reversed(self.kept.latest(head.origin, HISTORY)):
            witness = by_key.get(f"{signature.name}+{signature.key_id.hex()}")
            if witness is None or not witness.verifier.verify(
                checkpoint.body(), signature.signature
            ):
                continue  # a witness no longer configured, or a row that does not verify
            if checkpoint not in extends:
                extends[checkpoint] = self._log_extends(checkpoint, head)
            if not extends[checkpoint]:
                continue
            self._remember(witness, checkpoint, signature)
            witness.known_size = max(witness.known_size or 0, checkpoint.size)
            loaded += 1
        return loaded

    def _log_extends(self, checkpoint: Checkpoint, head: Checkpoint) -> bool:
        if checkpoint.size == 0:
            return True  # every log extends its empty tree
        if checkpoint.size > head.size:
            log.error(
                "a witness cosigned %d entries of %s, more than the log's %d: the database "
                "lost entries (a failover to a replica that was behind?)",
                checkpoint.size,
                head.origin,
                head.size,
            )
            return False
        if checkpoint.size == head.size:
            same = checkpoint.root == head.root
        else:
            proof = self.ledger.consistency_proof(checkpoint.size, head.size)
            try:
                verify_consistency(checkpoint.size, head.size, checkpoint.root, head.root, proof)
                same = True
            except ProofError:
                same = False
        if not same:
            log.error(
                "a kept cosigned checkpoint of %d entries of %s is not part of the log: the "
                "database was rewritten",
                checkpoint.size,
                head.origin,
            )
        return same

    # --- one submission ---------------------------------------------------------------

    def _submit(self, witness: _Witness, shared: _Round) -> NoteSignature:
        checkpoint, note = shared.checkpoint, shared.note
        for _ in range(2):  # a 409 names the size to prove from: one more request
            old = witness.known_size or 0
            if old > checkpoint.size:
                raise WitnessRefused(
                    f"the witness has cosigned {old} entries of {checkpoint.origin}, more than "
                    f"the log's {checkpoint.size}: the log was rolled back or forked"
                )
            proof = shared.proof_from(old)
            status, content_type, content = witness.post(format_add_checkpoint(old, proof, note))
            if status == 409 and content_type.startswith(SIZE_CONTENT_TYPE):
                witness.known_size = parse_known_size(content)
                continue
            if status != 200:
                text = content[:200].decode("utf-8", "replace")
                raise WitnessRefused(f"answered {status}: {text!r}")
            witness.known_size = checkpoint.size
            return _cosignature(witness.verifier, checkpoint, content)
        raise WitnessRefused("answered 409 twice")

    # --- what the gateway serves ------------------------------------------------------

    def cosigned_note(self, minimum: int = 1) -> bytes | None:
        """The largest checkpoint at least *minimum* witnesses cosigned (else the most
        cosigned one, the largest among equals), with every cosignature on it."""
        with self._lock:
            history = [(cp, tuple(sigs.values())) for cp, sigs in self._history.items()]
        if not history:
            return None
        enough = [pair for pair in history if len(pair[1]) >= minimum]
        if enough:
            checkpoint, cosignatures = max(enough, key=lambda pair: pair[0].size)
        else:
            checkpoint, cosignatures = max(history, key=lambda pair: (len(pair[1]), pair[0].size))
        text = checkpoint.text()
        return Note(text, (self.signer.sign(text), *cosignatures)).to_bytes()


class RoundPacing:
    """The gap between the starts of two rounds, from the commits the rounds coalesce.

    Each round reports the size it submitted. The entries a round found beyond the one
    that woke it (size growth minus one) over the time since the previous round started
    are the rate of commits that had to wait; it is smoothed (half the last estimate,
    half the new one), and the gap is `GAP_PER_RATE` seconds per entry/s, at most
    `MAX_GAP`. Commits that come one at a time (each round finds one new entry, or none)
    leave the gap at zero: each is submitted as soon as it is committed.
    """

    def __init__(self, *, per_rate: float | None = None, max_gap: float | None = None) -> None:
        self.per_rate = GAP_PER_RATE if per_rate is None else per_rate
        self.max_gap = MAX_GAP if max_gap is None else max_gap
        self.rate = 0.0  # smoothed entries/s that waited for a round
        self._last: tuple[int, float] | None = None  # size and start of the last round

    def gap_after(self, size: int, started: float) -> float:
        """The round that started at *started* submitted *size* entries: the seconds the
        next round waits after *started*."""
        if self._last is not None:
            last_size, last_started = self._last
            elapsed = max(started - last_started, 1e-3)
            waited = max(size - last_size - 1, 0)
            self.rate = (self.rate + waited / elapsed) / 2
        self._last = (size, started)
        return min(self.max_gap, self.rate * self.per_rate)


class _Round:
    """One round's signed checkpoint and its consistency proofs, each made once for all
    the witnesses (they mostly know the same size)."""

    def __init__(self, witnessing: CheckpointWitnessing, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        text = checkpoint.text()
        self.note = Note(text, (witnessing.signer.sign(text),)).to_bytes()
        self._ledger = witnessing.ledger
        self._proofs: dict[int, list[bytes]] = {}
        self._lock = threading.Lock()

    def proof_from(self, old: int) -> list[bytes]:
        if not 0 < old < self.checkpoint.size:
            return []
        with self._lock:
            if old not in self._proofs:
                self._proofs[old] = self._ledger.consistency_proof(old, self.checkpoint.size)
            return self._proofs[old]


def _httpx_post(client: httpx.Client, url: str) -> Post:
    def post(body: bytes) -> tuple[int, str, bytes]:
        answer = client.post(f"{url}/add-checkpoint", content=body)
        return answer.status_code, answer.headers.get("content-type", ""), answer.content

    return post


def _cosignature(
    verifier: CosignatureVerifier, checkpoint: Checkpoint, body: bytes
) -> NoteSignature:
    """The witness's valid cosignature among the answer's signature lines."""
    try:
        lines = body.decode("utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise WitnessRefused("the answer is not UTF-8") from exc
    for line in lines:
        try:
            signature = NoteSignature.from_line(line)
        except NoteError:
            continue
        if (signature.name, signature.key_id) == (verifier.name, verifier.key_id) and (
            verifier.verify(checkpoint.body(), signature.signature)
        ):
            return signature
    raise WitnessRefused("the answer holds no valid cosignature of the configured witness key")
