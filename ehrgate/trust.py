"""Which ledger key the client trusts for a gateway: given, or pinned on first use.

A tree head proves something only if its signature is checked against a key the client
already trusts. The key is either given (`Client(..., ledger_key=...)`, `--ledger-key`)
or learned from the gateway the first time and remembered ("trust on first use", as SSH
does with host keys). A later answer signed by another key is refused.

`LedgerPins` keeps pins in memory and, given a path, in a small JSON file:

    {"version": 1, "gateways": {"http://host:8000": {"ledger_public_key": B64,
                                                     "tree_size": N, "root": HEX,
                                                     "checkpoint_key": VKEY,
                                                     "witnessed_checkpoint": NOTE,
                                                     "checkpoint": [SIZE, NOTE]}}}

`tree_size` and `root` are those of the largest signed tree head seen so far: a later head
must extend it (a consistency proof), so a gateway that rewrote or forked its log is
caught. `checkpoint_key` is the C2SP vkey of the key that signs the log's checkpoints
(`GET /v1/ledger/checkpoint`), pinned the same way the first time a checkpoint is read.
`witnessed_checkpoint` is the largest checkpoint seen cosigned by a witness policy's quorum
(the whole signed note): a later checkpoint must be consistent with it, or the two are
the evidence of a split view. `checkpoint` is the largest checkpoint verified (cosigned
or not), kept to be shown beside a conflicting one. The file is written through a
temporary file and a rename, so it is never seen half-written.

A head advances with nearly every answer, so heads go first to a journal beside the file
(`known_ledgers.json.heads`): one JSON line each, `{"url": ..., "tree_size": N, "root":
HEX}`, appended with a single write. That costs a few microseconds where rewriting and
renaming the file costs a few hundred, and it is as durable: what the process wrote
survives the process. Reading the pins takes the largest head of the file and the journal
(a line cut short by a crash is ignored); every `JOURNAL_LINES` lines the heads are folded
into the file and the journal starts again.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path

from ehrgate.errors import UsageError, VerificationFailed
from envelope import EnvelopeError, VerifyKey, b64decode, b64encode

PINS_VERSION = 1
JOURNAL_LINES = 4096
"""Head lines appended before the heads are folded into the pins file."""


def default_pins_path() -> Path:
    """`$EHRGATE_KNOWN_LEDGERS`, else `$XDG_CONFIG_HOME/ehrgate/known_ledgers.json`."""
    explicit = os.environ.get("EHRGATE_KNOWN_LEDGERS")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ehrgate" / "known_ledgers.json"


def parse_ledger_key(text: str) -> VerifyKey:
    """A ledger public key from its base64 form (as `GET /v1/ledger/head` shows it)."""
    try:
        return VerifyKey(b64decode(text.strip(), length=32, what="the ledger key"))
    except EnvelopeError as exc:
        raise UsageError(f"{exc} (expected 32 bytes of Ed25519 public key in base64)") from exc


def normalise_url(url: str) -> str:
    return url.strip().rstrip("/")


class LedgerPins:
    """Ledger keys by gateway URL; thread-safe."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._journal = path.with_name(f"{path.name}.heads") if path is not None else None
        self._journaled = 0
        self._lock = threading.Lock()
        self._heads: dict[str, tuple[int, str]] = {}
        self._checkpoint_keys: dict[str, str] = {}
        self._witnessed: dict[str, str] = {}
        self._checkpoints: dict[str, tuple[int, str]] = {}
        self._keys: dict[str, str] = self._load() if path is not None else {}
        if path is not None:
            self._replay_journal()

    def _load(self) -> dict[str, str]:
        assert self.path is not None
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise UsageError(f"{self.path}: not a readable known-ledgers file ({exc})") from exc
        gateways = document.get("gateways") if isinstance(document, dict) else None
        if not isinstance(gateways, dict):
            raise UsageError(f"{self.path}: not a known-ledgers file (no 'gateways')")
        keys: dict[str, str] = {}
        for url, entry in gateways.items():
            key = entry.get("ledger_public_key") if isinstance(entry, dict) else None
            if not isinstance(key, str):
                raise UsageError(f"{self.path}: the entry for {url} has no ledger_public_key")
            keys[str(url)] = key
            size, root = entry.get("tree_size"), entry.get("root")
            if isinstance(size, int) and isinstance(root, str):
                self._heads[str(url)] = (size, root)
            checkpoint_key = entry.get("checkpoint_key")
            if isinstance(checkpoint_key, str):
                self._checkpoint_keys[str(url)] = checkpoint_key
            witnessed = entry.get("witnessed_checkpoint")
            if isinstance(witnessed, str):
                self._witnessed[str(url)] = witnessed
            seen = entry.get("checkpoint")
            if isinstance(seen, list) and len(seen) == 2:
                self._checkpoints[str(url)] = (int(seen[0]), str(seen[1]))
        return keys

    def _replay_journal(self) -> None:
        """Take the journal's heads where they are larger than the file's."""
        assert self._journal is not None
        try:
            lines = self._journal.read_bytes().splitlines()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UsageError(f"{self._journal}: not readable ({exc})") from exc
        for line in lines:
            try:
                entry = json.loads(line)
                url, size, root = entry["url"], entry["tree_size"], entry["root"]
            except (ValueError, KeyError, TypeError):
                continue  # cut short by a crash while it was written
            if not (isinstance(url, str) and isinstance(size, int) and isinstance(root, str)):
                continue
            known = self._heads.get(url)
            if known is None or known[0] < size:
                self._heads[url] = (size, root)
        self._journaled = len(lines)

    def _journal_head(self, url: str, size: int, root: str) -> None:
        assert self._journal is not None
        if self._journaled >= JOURNAL_LINES:
            self._save()
            return
        line = json.dumps({"url": url, "tree_size": size, "root": root}) + "\n"
        self._journal.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        self._journaled += 1

    def _save(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "version": PINS_VERSION,
            "gateways": {url: self._entry(url, key) for url, key in self._keys.items()},
        }
        temporary = self.path.with_name(f".{self.path.name}.{os.urandom(6).hex()}.partial")
        try:
            temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
            os.replace(temporary, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        # the file holds every head now: the journal's lines are folded in
        if self._journal is not None and self._journaled:
            with contextlib.suppress(FileNotFoundError):
                os.truncate(self._journal, 0)
            self._journaled = 0

    def _entry(self, url: str, key: str) -> dict[str, object]:
        entry: dict[str, object] = {"ledger_public_key": key}
        if url in self._heads:
            entry["tree_size"], entry["root"] = self._heads[url]
        if url in self._checkpoint_keys:
            entry["checkpoint_key"] = self._checkpoint_keys[url]
        if url in self._witnessed:
            entry["witnessed_checkpoint"] = self._witnessed[url]
        if url in self._checkpoints:
            entry["checkpoint"] = list(self._checkpoints[url])
        return entry

    def checkpoint(self, url: str) -> str | None:
        """The largest checkpoint note verified from *url*."""
        with self._lock:
            found = self._checkpoints.get(normalise_url(url))
        return found[1] if found is not None else None

    def remember_checkpoint(self, url: str, size: int, note: str) -> None:
        """Keep *note* (verified, of *size* entries) if it is the largest seen."""
        url = normalise_url(url)
        with self._lock:
            known = self._checkpoints.get(url)
            if known is not None and known[0] >= size:
                return
            self._checkpoints[url] = (size, note)
            if self.path is not None and url in self._keys:
                self._save()

    @property
    def directory(self) -> Path | None:
        """Where the pins file lives (split-view evidence goes there), if anywhere."""
        return self.path.parent if self.path is not None else None

    def witnessed(self, url: str) -> str | None:
        """The largest checkpoint note seen with a quorum of cosignatures from *url*."""
        with self._lock:
            return self._witnessed.get(normalise_url(url))

    def remember_witnessed(self, url: str, note: str) -> None:
        """Keep *note* (verified, with a quorum) as the largest witnessed checkpoint."""
        url = normalise_url(url)
        with self._lock:
            self._witnessed[url] = note
            if self.path is not None and url in self._keys:
                self._save()

    def head(self, url: str) -> tuple[int, str] | None:
        """(tree size, root hex) of the largest verified tree head seen from *url*."""
        with self._lock:
            return self._heads.get(normalise_url(url))

    def advance(self, url: str, tree_size: int, root: str) -> None:
        """Remember a verified head if it is larger than the one remembered."""
        url = normalise_url(url)
        with self._lock:
            known = self._heads.get(url)
            if known is not None and known[0] >= tree_size:
                return
            self._heads[url] = (tree_size, root)
            if self.path is not None and url in self._keys:
                self._journal_head(url, tree_size, root)

    def pinned(self, url: str) -> VerifyKey | None:
        with self._lock:
            key = self._keys.get(normalise_url(url))
        return parse_ledger_key(key) if key is not None else None

    def check_or_pin(self, url: str, offered: VerifyKey) -> VerifyKey:
        """The pinned key for *url*; pins *offered* when there is none yet.

        Raises VerificationFailed when *offered* differs from the pinned key.
        """
        url = normalise_url(url)
        text = b64encode(offered.to_bytes())
        with self._lock:
            known = self._keys.get(url)
            if known is None:
                self._keys[url] = text
                if self.path is not None:
                    self._save()
                return offered
        if known != text:
            raise VerificationFailed(
                f"the gateway at {url} now presents ledger key {text}, but {known} is pinned "
                f"for it{f' in {self.path}' if self.path else ''}: either the gateway was "
                "replaced or its ledger was swapped; remove the pin only if you know why"
            )
        return offered

    def check_or_pin_checkpoint_key(self, url: str, offered: str) -> str:
        """The pinned checkpoint vkey for *url*; pins *offered* when there is none yet.

        Raises VerificationFailed when *offered* differs from the pinned one.
        """
        url = normalise_url(url)
        with self._lock:
            known = self._checkpoint_keys.get(url)
            if known is None:
                self._checkpoint_keys[url] = offered
                if self.path is not None and url in self._keys:
                    self._save()
                return offered
        if known != offered:
            raise VerificationFailed(
                f"the gateway at {url} now presents checkpoint key {offered}, but {known} is "
                f"pinned for it{f' in {self.path}' if self.path else ''}: its log identity "
                "changed; remove the pin only if you know why"
            )
        return known
