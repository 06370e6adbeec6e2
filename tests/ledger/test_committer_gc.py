"""The committer pauses Python's cyclic collector for one batch only, and restores it."""

from __future__ import annotations

import gc

from ledger.committer import _collector_paused


def test_the_collector_is_off_during_a_batch_and_back_on_after() -> None:
    assert gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_on_after_a_failed_batch() -> None:
    try:
        with _collector_paused():
            raise RuntimeError("the database failed")
    except RuntimeError:
        pass
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_application_stays_off() -> None:
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
