"""`Ledger.follow`: a process reads what another appended before it answers from its state."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from envelope import IdentityKeys, SigningKey
from ledger import Ledger, database
from ledger.state import State
from ledger.wire import builders as b
from tests.ledger.conftest import FakeClock


def test_follow_reads_a_suspension_another_process_appended(
    database_url: str, clock: FakeClock
) -> None:
    key = SigningKey.generate()
    admin = IdentityKeys.generate("admin-1", "admin")
    doctor = IdentityKeys.generate("dr-follow", "clinician")
    with Ledger.open(database_url, key, clock=clock) as writer:
        writer.bootstrap(admin.public())
        with Ledger.open(database_url, key, clock=clock) as reader:
            writer.submit(b.enroll(admin, doctor.public(), issued_at=clock()))
            reader.follow(writer.tree_size())
            assert reader.identity(doctor.id) is not None
            assert not reader.is_suspended(doctor.id)

            writer.submit(b.suspend(admin, doctor.id, "left", issued_at=clock()))
            # Until it follows, the other process answers from what it knew.
            assert not reader.is_suspended(doctor.id)
            reader.follow(writer.tree_size() - 1)  # a size it already has: nothing read
            assert not reader.is_suspended(doctor.id)
            reader.follow(writer.tree_size())
            assert reader.is_suspended(doctor.id)
            assert reader.tree_size() == writer.tree_size()
            assert reader.head() == writer.head()

            # Its next commit chains on the other's blocks.
            reader.submit(b.enroll(admin, IdentityKeys.generate("dr-2", "clinician").public(),
                                   issued_at=clock()))  # fmt: skip
            writer.follow(reader.tree_size())
            assert writer.head() == reader.head()


def test_a_process_opening_while_another_commits_reads_one_snapshot(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state tables and the head are read as of one moment: an entry committed between
    the two reads would otherwise be counted in the head but missing from the state, and
    `follow` (which reads only entries past the head) would never bring it in."""
    key = SigningKey.generate()
    admin = IdentityKeys.generate("admin-1", "admin")
    late = IdentityKeys.generate("dr-late", "clinician")
    with Ledger.open(database_url, key, clock=clock) as writer:
        writer.bootstrap(admin.public())
        load_state = database.load_state
        committed: list[int] = []

        def load_then_commit(conn: Connection, state: State, **kwargs: bool) -> None:
            load_state(conn, state, **kwargs)
            if not committed:  # another process commits after the state tables were read
                writer.submit(b.enroll(admin, late.public(), issued_at=clock()))
                committed.append(writer.tree_size())

        monkeypatch.setattr(database, "load_state", load_then_commit)
        with Ledger.open(database_url, key, clock=clock) as reader:
            assert committed
            reader.follow(writer.tree_size())
            assert reader.tree_size() == writer.tree_size()
            assert reader.identity(late.id) is not None
