"""`Ledger.follow`: a process reads what another appended before it answers from its state."""

from __future__ import annotations

from envelope import IdentityKeys, SigningKey
from ledger import Ledger
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
