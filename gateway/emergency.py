"""Break-glass reads: who a live break-glass session lets read what, and how it is audited.

A `break_glass` act on the ledger opens a session: from its commit time until `ends_at`, the
invoking clinician may list and read the patient's records of the policy's categories
(metadata, capsule, body), and the hospital's emergency identity the policy names may read
its key share and those records' capsules, so that the hospital's emergency key service
can rewrap a record's data key for the clinician (docs/consent.md). Nothing has to close a
session: past `ends_at` it allows nothing, nor once the patient's policy has ended. Each
read it allows is an `access` entry whose reason begins with `BREAK_GLASS_PREFIX` and
names the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.ledger import Ledger
from ledger.wire.clock import format_time

BREAK_GLASS_PREFIX = "break-glass session "
INVOKER_ACTIONS = frozenset({"list", "record", "capsule", "body"})
EMERGENCY_ACTIONS = frozenset({"key_share", "record", "capsule"})


@dataclass(frozen=True, slots=True)
class Session:
    """A break-glass session as the ledger's state has it."""

    session_id: str
    pseudonym: str
    invoker: str
    emergency_identity: str
    hospital: str
    categories: tuple[str, ...] | str
    reason: str
    details: str
    started_at: str
    ends_at: str
    entry_index: int
    verdict: str | None
    reviewer: str | None
    review_note: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Session:
        categories = str(row["categories"])
        return cls(
            session_id=row["session_id"],
            pseudonym=row["pseudonym"],
            invoker=row["invoker"],
            emergency_identity=row["emergency_identity"],
            hospital=row["hospital"],
            categories="all" if categories == "all" else tuple(categories.split(",")),
            reason=row["reason"],
            details=row["details"],
            started_at=row["started_at"],
            ends_at=row["ends_at"],
            entry_index=int(row["entry_index"]),
            verdict=row["verdict"],
            reviewer=row["reviewer"],
            review_note=row["review_note"],
        )

    def covers(self, category: str) -> bool:
        return self.categories == "all" or category in self.categories

    def live_at(self, at: str) -> bool:
        return self.started_at <= at < self.ends_at

    def category_names(self, ledger: Ledger) -> list[str]:
        if self.categories == "all":
            return ledger.categories.names()
        return list(self.categories)

    def audit_reason(self) -> str:
        return (
            f"{BREAK_GLASS_PREFIX}{self.session_id} ({self.reason}) opened by {self.invoker}, "
            f"until {self.ends_at}"
        )


def session(ledger: Ledger, session_id: str) -> Session | None:
    row = ledger.consent_row("break_glass_sessions", session_id)
    return None if row is None else Session.from_row(row)


def sessions(ledger: Ledger, pseudonym: str | None = None) -> list[Session]:
    """Every session (of *pseudonym*, if given), oldest first."""
    where = {} if pseudonym is None else {"pseudonym": pseudonym}
    return [Session.from_row(row) for row in ledger.consent_rows("break_glass_sessions", **where)]


def _policy_holds(ledger: Ledger, found: Session, now: str) -> bool:
    """Whether the patient's policy the session was opened under still holds: withdrawing
    it (a policy ending now) ends its open sessions too."""
    policy = ledger.consent_row("break_glass_policies", (found.pseudonym, found.emergency_identity))
    return policy is not None and policy["not_before"] <= now < policy["not_after"]


def live_session(
    ledger: Ledger,
    reader: str,
    action: str,
    pseudonym: str,
    category: str | None,
    at: datetime,
) -> Session | None:
    """The live session that lets *reader* do *action* on *pseudonym* (and *category*, if
    named) at *at*, the latest-ending one if several; None if there is none."""
    now = format_time(at)
    found: Session | None = None
    for candidate in sessions(ledger, pseudonym):
        if not candidate.live_at(now):
            continue
        if reader == candidate.invoker:
            allowed = action in INVOKER_ACTIONS
        elif reader == candidate.emergency_identity:
            allowed = action in EMERGENCY_ACTIONS
        else:
            allowed = False
        if not allowed or (category is not None and not candidate.covers(category)):
            continue
        if ledger.is_suspended(candidate.invoker) or not _policy_holds(ledger, candidate, now):
            continue
        if found is None or candidate.ends_at > found.ends_at:
            found = candidate
    return found
