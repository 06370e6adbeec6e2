"""Following a remote gateway's log: checkpoints, consistency, entries, rules (a monitor).

Each round (`LogMonitor.round`):

1. reads the log's checkpoint through the SDK: signed by the pinned checkpoint key, with
   the witness policy's quorum if one is given, and consistent with every tree seen in
   earlier rounds (the pins live in the monitor's state directory, so a fork between two
   rounds is a `SplitView` with both signed views saved under `<state>/evidence/`);
2. fetches the blocks and entries that are new since the last round (`/v1/ledger/blocks`,
   `/v1/ledger/entries`, as an auditor or admin) and appends them to a local mirror
   (`blocks.jsonl`, `entries.jsonl`);
3. verifies the whole mirror offline with the ledger's own pure verifier (`ledger.verify`:
   every signature, the rules replayed, the hash chain, each block's Merkle root); a
   rewritten old entry changes a later block's recomputed root and is found here;
4. ties the checkpoint to the verified log: a block of the same size with the same root.

The report of a round says what was found; `ok` is False on any damage or conflict.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ehrgate.errors import UsageError
from ehrgate.evidence import save_split_view

if TYPE_CHECKING:
    from ehrgate.client import Client

STATE_FILE = "state.json"


@dataclass
class RoundReport:
    """What one round found."""

    gateway: str
    origin: str = ""
    tree_size: int = 0
    root: str = ""
    cosigned_by: tuple[str, ...] = ()
    previous_size: int = 0
    new_entries: int = 0
    entries: int = 0
    blocks: int = 0
    ok: bool = True
    problem: str | None = None
    evidence: str | None = None
    seconds: float = 0.0
    damage: dict[str, Any] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "ok": self.ok,
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root": self.root,
            "cosigned_by": list(self.cosigned_by),
            "previous_size": self.previous_size,
            "new_entries": self.new_entries,
            "entries": self.entries,
            "blocks": self.blocks,
            "problem": self.problem,
            "damage": self.damage,
            "evidence": self.evidence,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        if not self.ok:
            where = f" (evidence: {self.evidence})" if self.evidence else ""
            return f"ALERT {self.gateway}: {self.problem}{where}"
        cosigned = ", ".join(self.cosigned_by) or "no trusted witness"
        return (
            f"ok {self.origin}: {self.tree_size} entries (+{self.new_entries}), root "
            f"{self.root[:16]}…, {self.blocks} blocks verified with the rules replayed; "
            f"cosigned by {cosigned}; {self.seconds:.2f} s"
        )


class LogMonitor:
    """Follows one gateway's log, with its mirror and state in *state_dir*."""

    def __init__(self, client: Client, state_dir: Path) -> None:
        self.client = client
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self._state = self._load_state()

    def _load_state(self) -> dict[str, Any]:
        path = self.state_dir / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return {"gateway": self.client.url, "entries": 0, "blocks": 0, "tree_size": 0}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{path}: not a readable monitor state ({exc})") from exc
        if not isinstance(state, dict) or state.get("gateway") != self.client.url:
            raise UsageError(
                f"{path} is the state of another gateway ({state.get('gateway')!r}): give "
                "each monitored gateway its own --state-dir"
            )
        return state

    def _save_state(self) -> None:
        path = self.state_dir / STATE_FILE
        temporary = path.with_suffix(".partial")
        temporary.write_text(json.dumps(self._state, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, path)

    def round(self) -> RoundReport:
        """One round; raises `SplitView` (evidence kept) or `NoQuorum` from the SDK."""
        started = time.perf_counter()
        report = RoundReport(self.client.url, previous_size=int(self._state["tree_size"]))
        checkpoint = self.client.ledger_checkpoint()
        report.origin, report.tree_size = checkpoint.origin, checkpoint.tree_size
        report.root, report.cosigned_by = checkpoint.root, checkpoint.cosigned_by
        before = int(self._state["entries"])
        if checkpoint.tree_size > before:
            self._mirror()
        report.new_entries = int(self._state["entries"]) - before
        verified = self._verify()
        report.entries, report.blocks = verified.entries, verified.blocks
        if not verified.ok:
            report.ok = False
            report.problem = f"the log does not verify: {verified.damage}"
            report.damage = verified.damage.to_json() if verified.damage else None
        elif not self._tie(checkpoint.tree_size, checkpoint.root):
            report.ok = False
            report.problem = (
                f"the checkpoint of {checkpoint.tree_size} entries (root {checkpoint.root}) "
                "is not the root of the verified log at that size: the log forked"
            )
            path = save_split_view(
                self.state_dir, self.client.url, report.problem, [("checkpoint", checkpoint.note)]
            )
            report.evidence = str(path)
        if report.ok:
            self._state["tree_size"] = checkpoint.tree_size
            self._state["checkpoint"] = checkpoint.note
            self._save_state()
        report.seconds = time.perf_counter() - started
        return report

    # --- the mirror -------------------------------------------------------------------

    def _mirror(self) -> None:
        """Append the blocks, then the entries they cover, that are new since last time."""
        new_blocks = list(self.client.ledger_blocks(int(self._state["blocks"])))
        if not new_blocks:
            return
        covered = int(new_blocks[-1]["tree_size"])
        new_entries = []
        for entry in self.client.ledger_entries(int(self._state["entries"])):
            if int(entry["index"]) >= covered:
                break
            new_entries.append(entry)
        _append(self.state_dir / "blocks.jsonl", new_blocks)
        _append(self.state_dir / "entries.jsonl", new_entries)
        self._state["blocks"] = int(self._state["blocks"]) + len(new_blocks)
        self._state["entries"] = int(self._state["entries"]) + len(new_entries)
        self._save_state()

    def _verify(self) -> Any:
        from ledger.exported import ExportSource
        from ledger.verify import verify

        source = ExportSource(
            _read(self.state_dir / "entries.jsonl"),
            _read(self.state_dir / "blocks.jsonl"),
            count=int(self._state["entries"]),
        )
        return verify(source, ledger_key=self.client.ledger_key(), replay=True)

    def _tie(self, tree_size: int, root: str) -> bool:
        """Whether a verified block has *tree_size* entries and *root*."""
        if tree_size == 0:
            return True
        for block in _read(self.state_dir / "blocks.jsonl"):
            if int(block["tree_size"]) == tree_size:
                return str(block["root"]) == root
        return False


def _append(path: Path, items: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n")
        out.flush()
        os.fsync(out.fileno())


def _read(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)
