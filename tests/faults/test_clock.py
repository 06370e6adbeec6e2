"""A clock that jumps backwards: ledger time never goes back, and no right revives.

Defined behaviour: block timestamps never decrease (a block made while the clock is behind
gets the previous block's time, in this process and after a restart), the rules judge a
commit at that ledger time, `Ledger.check` without an explicit time uses
`Ledger.now()` = max(clock, latest block time), and the gateway checks reads at
max(its clock, ledger time). Pins the clamp in `Committer._plan`, `Ledger.now()` and
`gateway.access.read_time`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from envelope import SigningKey
from ledger import DatabaseSource, Ledger, RuleViolation
from ledger.verify import verify
from ledger.wire import builders as b
from tests.gateway import helpers as gateway_helpers, scenario
from tests.ledger.conftest import FakeClock, World, build_world

pytestmark = pytest.mark.faults


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(ledger_url: str, key: SigningKey, clock: FakeClock) -> Iterator[World]:
    with Ledger.open(ledger_url, key, clock=clock) as ledger:
        yield build_world(ledger, clock)


def access(ledger: Ledger, reason: str) -> None:
    ledger.submit(
        b.access(ledger.signer, actor=ledger.signer.id, action="list", pseudonym="00" * 32,
                 decision="denied", reason=reason, issued_at=ledger.clock())
    )  # fmt: skip


def block_times(ledger: Ledger) -> list[str]:
    return [block.timestamp for block in ledger.blocks(0, 10_000)]


def test_block_times_never_go_backwards_when_the_clock_jumps_back(
    world: World, ledger_url: str
) -> None:
    ledger, clock = world.ledger, world.clock
    clock.advance(timedelta(minutes=10))
    access(ledger, "before the jump")
    latest = ledger.head()
    assert latest is not None
    clock.advance(timedelta(hours=-3))
    for n in range(3):
        access(ledger, f"after the jump {n}")
    times = block_times(ledger)
    assert times == sorted(times)
    assert times[-1] == latest.timestamp
    with DatabaseSource(ledger_url) as source:
        assert verify(source).ok


def test_block_times_never_go_backwards_across_a_restart_with_a_clock_behind(
    world: World, ledger_url: str, key: SigningKey
) -> None:
    world.clock.advance(timedelta(hours=2))
    access(world.ledger, "the last entry of the first run")
    latest = world.ledger.head()
    assert latest is not None
    world.ledger.close()
    behind = FakeClock(world.clock.now - timedelta(days=1))
    with Ledger.open(ledger_url, key, clock=behind) as reopened:
        assert reopened.now() == world.clock.now
        access(reopened, "the first entry of the second run")
        times = block_times(reopened)
    assert times == sorted(times)
    assert times[-1] == latest.timestamp
    with DatabaseSource(ledger_url) as source:
        assert verify(source).ok


def test_a_clock_jumping_back_does_not_revive_an_expired_read_right(world: World) -> None:
    # dr-house's read right ends one hour after T0.
    ledger, clock = world.ledger, world.clock
    assert ledger.check(world.dr.id, "read", world.pseudonym, "lab-results").allowed
    clock.advance(timedelta(hours=2))
    access(ledger, "ledger time passes the end of the right")
    assert not ledger.check(world.dr.id, "read", world.pseudonym, "lab-results").allowed
    clock.advance(timedelta(hours=-1, minutes=-30))  # the clock now says T0 + 30 min
    assert not ledger.check(world.dr.id, "read", world.pseudonym, "lab-results").allowed


def test_a_clock_jumping_back_does_not_revive_an_expired_write_right(world: World) -> None:
    ledger, clock = world.ledger, world.clock
    clock.advance(timedelta(hours=2))
    access(ledger, "ledger time passes the end of the right")
    issued = clock()
    clock.advance(timedelta(hours=-1, minutes=-30))
    with pytest.raises(RuleViolation) as refused:
        ledger.submit(world.record_tx(world.dr, issued_at=issued, created_at=issued))
    assert refused.value.code == "not-granted"


def test_a_gateway_clock_jumping_back_does_not_revive_an_expired_read_right(
    gateway_world: gateway_helpers.World,
) -> None:
    world = gateway_world
    cast = scenario.set_up(world)
    until = world.clock() + timedelta(minutes=10)
    world.grant(cast.patient, cast.doctor, ["read"], ["lab-results"], not_after=until)
    world.grant(cast.patient, cast.system, ["write"], ["lab-results"])
    world.share_key(cast.patient, cast.doctor)
    record = world.ingest_pdf(cast.system, cast.patient, "lab-results", scenario.PDF)
    path = f"/v1/records/{record['record_id']}/capsule"
    assert world.client.get(path, headers=world.headers(cast.doctor)).status_code == 200

    world.clock.advance(timedelta(minutes=20))  # past the end of the right
    world.tokens.clear()
    assert world.client.get(path, headers=world.headers(cast.doctor)).status_code == 403
    world.clock.advance(timedelta(minutes=-15))  # the clock jumps back inside the right
    world.tokens.clear()
    denied = world.client.get(path, headers=world.headers(cast.doctor))
    assert denied.status_code == 403, denied.text
