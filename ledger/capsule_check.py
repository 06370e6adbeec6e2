"""The check of the stored capsules (`ledger_capsules`) against the replayed log.

The log holds only each capsule's SHA-256 (a record's `capsule_sha256`, changed by a
`rekey`); the bytes live in a table keyed by that hash, outside the log, so that erasure
can delete them. The check reads the table once, a row at a time, and finds:

* "capsule-hash": a row whose bytes do not hash to its key (the bytes or the key changed);
* "capsule-missing": a record whose current capsule has no row — erased by
  `delete_capsule` or lost; the database cannot tell which, nor whether a blob store still
  holds the content-addressed copy the gateway puts next to the bodies;
* "capsule-unreferenced": a row no record names, now or before a rekey — the ledger never
  stored it.

A capsule a rekey superseded stays in the table (rekey deletes nothing; `delete_capsule`
erases it), so such a row is a note, "capsule-superseded", not damage.

An erased record (an `erase` entry) must have no capsule left: its missing capsule is the
note "capsule-erased", and a row still holding a capsule it named (now or before a rekey)
is "capsule-not-erased" damage — the erasure was not finished (`ehrgate gc` finishes it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger.report import Damage
from ledger.state import Key, Row


@dataclass(slots=True)
class CapsuleFindings:
    checked: int = 0
    damage: list[Damage] = field(default_factory=list)
    notes: list[Damage] = field(default_factory=list)


def check_capsules(
    rows: Iterable[tuple[str, bytes]],
    records: Mapping[Key, Row] | None,
    named: Mapping[str, str],
    erased: Mapping[Key, Row] | None = None,
    *,
    exports: Mapping[Key, Row] | None = None,
) -> CapsuleFindings:
    """Check the stored capsule *rows* (key, bytes), read once.

    *records*: the replayed `records` table (None when the log was not replayed: then only
    each row's hash is checked); *named*: every capsule SHA-256 a record or rekey on the log
    named, with the last record that named it; *erased*: the replayed `erasures` table;
    *exports*: the replayed `study_exports` table, whose capsules (sealed for a study) are
    referenced too.
    """
    erased = erased or {}
    current = None if records is None else {r["capsule_sha256"]: r for r in records.values()}
    if current is not None and exports:
        current.update({r["capsule_sha256"]: r for r in exports.values()})
    found = CapsuleFindings()
    seen: set[str] = set()
    for key, data in rows:
        found.checked += 1
        seen.add(key)
        actual = hashlib.sha256(data).hexdigest()
        if actual != key:
            problem = _hash_problem(key, actual, current, named)
            found.damage.append(Damage("capsule-hash", f"capsule {key}", problem))
        elif current is not None and named.get(key) in erased:
            found.damage.append(_not_erased(key, erased[named[key]]))
        elif current is not None and key not in current:
            _unreferenced(found, key, named)
    if records is not None:
        for record in sorted(records.values(), key=lambda r: str(r["record_id"])):
            if record["capsule_sha256"] in seen:
                continue
            erasure = erased.get(record["record_id"])
            if erasure is not None:
                found.notes.append(_erased(record, erasure))
            else:
                found.damage.append(_missing(record))
    return found


def _erased(record: Row, erasure: Row) -> Damage:
    return Damage(
        "capsule-erased",
        f"record {record['record_id']}",
        f"was erased by entry {erasure['entry_index']}; its capsule is gone, as it must be",
    )


def _not_erased(key: str, erasure: Row) -> Damage:
    return Damage(
        "capsule-not-erased",
        f"capsule {key}",
        f"belongs to record {erasure['record_id']}, erased by entry "
        f"{erasure['entry_index']}, yet is still stored: the erasure is unfinished "
        "(`ehrgate gc` deletes what an erasure left)",
    )


def _hash_problem(
    key: str, actual: str, current: Mapping[str, Row] | None, named: Mapping[str, str]
) -> str:
    problem = f"its bytes hash to {actual}, not to its key: the bytes or the key were changed"
    if current is not None and key in current:
        row = current[key]
        owner = (
            f"record {row['record_id']}" if "record_id" in row
            else f"study export {row['export_id']}"
        )  # fmt: skip
        problem += f"; it is the current capsule of {owner}"
    elif current is not None:
        problem += "; no record names this key"
    if actual in named:
        problem += (
            f"; the bytes are capsule {actual} of record {named[actual]} "
            "(the row was moved from that key)"
        )
    return problem


def _unreferenced(found: CapsuleFindings, key: str, named: Mapping[str, str]) -> None:
    if key in named:
        found.notes.append(
            Damage(
                "capsule-superseded",
                f"capsule {key}",
                f"was the capsule of record {named[key]} before a rekey; rekey keeps the old "
                "capsule (delete_capsule erases it when it is no longer needed)",
            )
        )
    else:
        found.damage.append(
            Damage(
                "capsule-unreferenced",
                f"capsule {key}",
                "no record names it, now or before a rekey: the ledger never stored this row",
            )
        )


def _missing(record: Row) -> Damage:
    sha = record["capsule_sha256"]
    since = (
        f"set by the rekey at entry {record['rekeyed_at']}"
        if record["rekeyed_at"] is not None
        else f"named by entry {record['entry_index']}"
    )
    return Damage(
        "capsule-missing",
        f"record {record['record_id']}",
        f"its capsule {sha} ({since}) is not in ledger_capsules: erased by delete_capsule "
        "or lost. A blob store may still hold a content-addressed copy (the gateway puts one "
        "next to the bodies), which the database cannot tell",
    )


__all__ = ["CapsuleFindings", "check_capsules"]
