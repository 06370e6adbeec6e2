"""What verification reports: `Damage` (one thing found wrong) and `VerifyReport`.

A report names the first damage of the log or of the state (the walk stops there), and
every damaged stored capsule (that check reads the whole table). Notes are findings that
are not damage, such as a capsule a rekey superseded and the table still keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.state import State
from ledger.wire.merkle import EMPTY_ROOT

_SHOWN_ERASED = 50


@dataclass(frozen=True, slots=True)
class Damage:
    """A thing found wrong: what kind of thing, which one, and what is wrong.

    Kinds: "entry", "block", "state", "head", "source" (the first damage of the log or
    state); "capsule-hash", "capsule-missing", "capsule-unreferenced", "capsule-not-erased"
    (stored capsules); "capsule-superseded" and "capsule-erased" are only ever notes.
    """

    kind: str
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "where": self.where, "problem": self.problem}


@dataclass(slots=True)
class VerifyReport:
    entries: int = 0
    blocks: int = 0
    root: str = EMPTY_ROOT.hex()
    ledger_key: str | None = None
    state_digest: str | None = None
    state_compared: bool = False
    damage: Damage | None = None
    capsules_checked: int | None = None  # None: the source stores no capsules
    capsule_damage: list[Damage] = field(default_factory=list)
    notes: list[Damage] = field(default_factory=list)
    seconds: float = 0.0
    state: State | None = field(default=None, repr=False)
    # Every capsule a record or rekey on the log named -> the last record naming it.
    named_capsules: dict[str, str] = field(default_factory=dict, repr=False)
    # (entry index of the erase, record id) of every erased record, by entry.
    erased: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.damage is None and not self.capsule_damage

    def summary(self) -> str:
        lines = [f"DAMAGED {found.kind} — {found}" for found in self._all_damage()]
        lines += [f"note {note.kind} — {note}" for note in self.notes]
        if self.ok:
            state = "state matches the replay" if self.state_compared else "no stored state"
            capsules = (
                "" if self.capsules_checked is None else f", {self.capsules_checked} capsules"
            )
            lines.insert(
                0,
                f"ok: {self.entries} entries in {self.blocks} blocks, root {self.root}, "
                f"{state} (digest {self.state_digest}){capsules}, {self.seconds:.2f} s",
            )
        shown = self.erased[:_SHOWN_ERASED]
        lines += [f"erased record {record} (entry {index})" for index, record in shown]
        if len(self.erased) > len(shown):
            lines.append(f"… and {len(self.erased) - len(shown)} more erased records (--json)")
        return "\n".join(lines)

    def _all_damage(self) -> list[Damage]:
        return ([] if self.damage is None else [self.damage]) + self.capsule_damage

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "blocks": self.blocks,
            "root": self.root,
            "ledger_key": self.ledger_key,
            "state_digest": self.state_digest,
            "state_compared": self.state_compared,
            "damage": None if self.damage is None else self.damage.to_json(),
            "capsules": {
                "checked": self.capsules_checked,
                "damage": [found.to_json() for found in self.capsule_damage],
                "notes": [note.to_json() for note in self.notes],
            },
            "erased": [{"record_id": r, "entry_index": i} for i, r in self.erased],
            "seconds": round(self.seconds, 3),
        }


__all__ = ["Damage", "VerifyReport"]
