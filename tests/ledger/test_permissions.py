"""Permission checks: validity boundaries, revocation, categories, and the write-at-commit rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger import RuleViolation, format_time
from ledger.wire import builders as b
from tests.ledger.conftest import World

US = timedelta(microseconds=1)


@pytest.fixture
def bounded(world: World) -> tuple[World, str, str, str]:
    """A read+write grant on lab-results to dr-wilson valid [t0 + 1h, t0 + 2h)."""
    w = world
    start = w.clock() + timedelta(hours=1)
    end = w.clock() + timedelta(hours=2)
    tx = b.grant(
        w.patient,
        pseudonym=w.pseudonym,
        grantee=w.dr_other.id,
        rights=["read", "write"],
        categories=["lab-results"],
        not_before=start,
        not_after=end,
        issued_at=w.clock(),
    )
    w.ledger.submit(tx)
    return w, tx.body["permission_id"], format_time(start), format_time(end)


def test_not_before_is_inclusive_and_not_after_exclusive(
    bounded: tuple[World, str, str, str],
) -> None:
    w, permission_id, start, end = bounded
    from ledger.wire.clock import parse_time

    s, e = parse_time(start), parse_time(end)
    check = w.ledger.check
    assert not check(w.dr_other.id, "read", w.pseudonym, "lab-results", s - US)
    decision = check(w.dr_other.id, "read", w.pseudonym, "lab-results", s)
    assert decision.allowed
    assert decision.permission_id == permission_id
    assert check(w.dr_other.id, "read", w.pseudonym, "lab-results", e - US)
    late = check(w.dr_other.id, "read", w.pseudonym, "lab-results", e)
    assert not late
    assert "expired" in late.reason
    early = check(w.dr_other.id, "read", w.pseudonym, "lab-results", s - US)
    assert "not valid yet" in early.reason


def test_a_record_needs_the_write_right_valid_at_commit_time(
    bounded: tuple[World, str, str, str],
) -> None:
    w, _, start, end = bounded
    from ledger.wire.clock import parse_time

    s, e = parse_time(start), parse_time(end)
    w.clock.now = s - US
    with pytest.raises(RuleViolation, match="not valid yet"):
        w.ledger.submit(w.record_tx(w.dr_other))
    w.clock.now = s
    w.ledger.submit(w.record_tx(w.dr_other))
    w.clock.now = e - US
    w.ledger.submit(w.record_tx(w.dr_other))
    w.clock.now = e
    with pytest.raises(RuleViolation, match="expired"):
        w.ledger.submit(w.record_tx(w.dr_other))


def test_a_revoked_grant_allows_nothing(world: World) -> None:
    w = world
    assert w.ledger.check(w.dr.id, "read", w.pseudonym, "lab-results")
    w.ledger.submit(
        b.revoke(w.patient, pseudonym=w.pseudonym, permission_id=w.grant_id, issued_at=w.clock())
    )
    assert not w.ledger.check(w.dr.id, "read", w.pseudonym, "lab-results")
    with pytest.raises(RuleViolation) as caught:
        w.ledger.submit(w.record_tx(w.dr))
    assert caught.value.code == "not-granted"
    with pytest.raises(RuleViolation) as again:
        w.ledger.submit(
            b.revoke(
                w.patient, pseudonym=w.pseudonym, permission_id=w.grant_id, issued_at=w.clock()
            )
        )
    assert again.value.code == "already-revoked"
    assert w.ledger.permissions_for(w.pseudonym, w.dr.id) == []
    revoked = w.ledger.permissions_for(w.pseudonym, w.dr.id, include_revoked=True)
    assert [p.permission_id for p in revoked] == [w.grant_id]
    assert revoked[0].revoked


def test_rights_and_categories_are_checked_separately(world: World) -> None:
    w = world
    assert w.ledger.check(w.dr.id, "write", w.pseudonym, "lab-results")
    no_share = w.ledger.check(w.dr.id, "share", w.pseudonym, "lab-results")
    assert not no_share
    assert "share right" in no_share.reason
    other = w.ledger.check(w.dr.id, "read", w.pseudonym, "radiation-dose")
    assert not other
    assert "radiation-dose" in other.reason
    assert not w.ledger.check(w.dr.id, "read", w.pseudonym2, "lab-results")


def test_all_categories_cover_every_category(world: World) -> None:
    w = world
    for category in w.ledger.categories.names():
        assert w.ledger.check(w.system.id, "write", w.pseudonym, category)
    assert not w.ledger.check(w.system.id, "read", w.pseudonym, "lab-results")


def test_the_patient_always_may_and_strangers_never(world: World) -> None:
    w = world
    assert w.ledger.check(w.patient.id, "read", w.pseudonym, "radiation-dose")
    assert not w.ledger.check("nobody", "read", w.pseudonym, "lab-results")
    assert not w.ledger.check(w.dr.id, "read", "00" * 32, "lab-results")


def test_a_grant_and_its_revocation_in_one_batch(world: World) -> None:
    w = world
    grant = b.grant(
        w.patient, pseudonym=w.pseudonym, grantee=w.auditor.id, rights=["read"],
        categories="all", not_before=w.clock(), not_after=w.clock() + timedelta(days=1),
        issued_at=w.clock(),
    )  # fmt: skip
    revoke = b.revoke(
        w.patient,
        pseudonym=w.pseudonym,
        permission_id=grant.body["permission_id"],
        issued_at=w.clock(),
    )
    results = w.ledger.submit_many([grant, revoke])
    assert all(not isinstance(r, RuleViolation) for r in results)
    assert not w.ledger.check(w.auditor.id, "read", w.pseudonym, "lab-results")
    row = w.ledger.permission(grant.body["permission_id"])
    assert row is not None
    assert row.revoked_at is not None
