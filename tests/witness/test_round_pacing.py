"""The gateway's checkpoint rounds adapt to the load: fewer rounds per second as appends
per second rise, none delayed while commits come one at a time.

`RoundPacing` is driven with a simulated clock (no sleeping, no timing); the last test runs
the real round thread and checks only what does not depend on timing: many commits made
at once are coalesced, and the last one is cosigned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from envelope import SigningKey
from gateway.witnessing import MAX_GAP, CheckpointWitnessing, RoundPacing
from ledger.wire.cosignatures import Cosigner
from tests.witness.helpers import TestLog, open_test_witness
from tests.witness.test_connections import Ledger
from witness import Refused, Witness

COSIGNER = Cosigner("witness.hospital-c.example", SigningKey(bytes(range(2, 34))))


def simulate(appends_per_second: float, seconds: float, round_time: float = 0.005) -> int:
    """Rounds made in *seconds* of commits at a steady rate, each round taking
    *round_time* and then waiting the gap the pacing gives (or the next commit)."""
    pacing, now, rounds, interval = RoundPacing(), 0.0, 0, 1 / appends_per_second
    while now < seconds:
        size = int(now * appends_per_second + 1e-6) + 1  # the commits so far, the first at 0
        gap = pacing.gap_after(size, now)
        rounds += 1
        next_commit = size * interval  # a round starts only once a new commit woke it
        now = max(now + round_time, now + gap, next_commit)
    return rounds


def test_commits_one_at_a_time_are_each_submitted_at_once() -> None:
    pacing = RoundPacing()
    for i in range(1, 50):  # each round finds the one commit that woke it
        assert pacing.gap_after(i, i * 0.03) == 0


def test_once_commits_coalesce_rounds_per_second_fall_as_appends_per_second_rise() -> None:
    # Rounds of 20 ms: from 50 commits/s on, commits arrive while a round is under way.
    rounds = {rate: simulate(rate, 20, round_time=0.02) / 20 for rate in (80, 160, 320)}
    assert rounds[80] < 80 / 4
    assert rounds[80] >= rounds[160] >= rounds[320]
    assert rounds[320] >= 1 / MAX_GAP - 1  # the gap never exceeds MAX_GAP


def test_commits_slower_than_rounds_are_never_held_back() -> None:
    assert simulate(5, 20) == 100  # every commit its own round
    assert simulate(40, 20, round_time=0.02) == 800


def test_the_gap_is_bounded_and_shrinks_again_when_the_load_stops() -> None:
    pacing, size, now = RoundPacing(), 0, 0.0
    for _ in range(40):  # 1000 commits/s
        now += pacing.gap_after(size, now) or 0.001
        size += int(1000 * 0.2)
    assert pacing.gap_after(size, now) == MAX_GAP
    gaps = []
    for _ in range(20):  # then one commit per round
        now += 1.0
        size += 1
        gaps.append(pacing.gap_after(size, now))
    assert gaps[-1] < 0.001
    assert gaps == sorted(gaps, reverse=True)


class Counting:
    """A witness behind a mock transport that counts the requests it answers."""

    def __init__(self, witness: Witness) -> None:
        self.witness, self.requests = witness, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        try:
            return httpx.Response(200, content=self.witness.add_checkpoint(request.content))
        except Refused as refused:
            headers = {"content-type": refused.content_type}
            return httpx.Response(refused.status, content=refused.body, headers=headers)


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[tuple[TestLog, Witness]]:
    log = TestLog().grow(600)
    with open_test_witness(tmp_path / "w.db", log, cosigner=COSIGNER) as w:
        yield log, w


def test_commits_made_meanwhile_share_a_round(witness: tuple[TestLog, Witness]) -> None:
    log, w = witness
    ledger, counting = Ledger(log, 1), Counting(w)
    witnessing = CheckpointWitnessing(
        ledger,
        log.signer,
        [("http://witness.test", COSIGNER.verifier)],
        interval=30.0,
        transport=httpx.MockTransport(counting),
    )
    witnessing.start()
    try:
        for size in range(2, 501):  # 499 commits, each waking the round thread
            ledger.size = size
            witnessing.wake()
        deadline = time.monotonic() + 60
        while witnessing._witnesses[0].known_size != 500 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        witnessing.stop()
    assert witnessing._witnesses[0].known_size == 500  # the last commit is cosigned
    assert counting.requests < 250  # and most rounds carried several commits
