"""Evidence of a split view: two views a log signed that cannot both be true, kept on disk.

A checkpoint (or tree head) is signed by the log's own key, so two of them that conflict
(one size, two roots; or no consistency proof between them) prove the log forked, to
anyone who holds the log's public key. The client writes both, whole, to a JSON file
before it refuses to go on:

    {"kind": "split-view", "gateway": URL, "found_at": ISO time, "reason": TEXT,
     "views": [{"what": "witnessed checkpoint", "signed": NOTE or TREE HEAD}, ...]}

in `<trust directory>/evidence/split-view-<time>-<hash>.json` (the trust directory is the
witness policy's `evidence_dir`, else the directory of the known-ledgers file).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def save_split_view(
    directory: Path | None, gateway: str, reason: str, views: Sequence[tuple[str, Any]]
) -> Path | None:
    """Write the evidence file under *directory* (None: nowhere) and return its path."""
    if directory is None:
        return None
    now = datetime.now(UTC)
    document = {
        "kind": "split-view",
        "gateway": gateway,
        "found_at": now.isoformat(timespec="seconds"),
        "reason": reason,
        "views": [{"what": what, "signed": signed} for what, signed in views],
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = directory / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"split-view-{now.strftime('%Y%m%dT%H%M%SZ')}-{digest}.json"
    temporary = path.with_suffix(".partial")
    temporary.write_text(text)
    os.replace(temporary, path)
    return path
