"""Files that appear whole: written under a temporary name beside the target, then moved
into place in one step, so that no reader ever sees half a file."""

from __future__ import annotations

import os
from pathlib import Path

from ehrgate.errors import UsageError


def publish(temporary: Path, target: Path, *, replace: bool) -> None:
    """Move the finished *temporary* file to *target*; unless *replace*, never replace a
    file that is there (a hard link fails instead of overwriting)."""
    try:
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)
    except FileExistsError as exc:
        raise UsageError(
            f"{target} already exists; choose another name or allow replacing it (--force)"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror}") from exc
