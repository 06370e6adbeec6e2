"""`ehrgate` as a user runs it against a live gateway: a subprocess with the gateway and a
pins file in its environment, and the checks the command tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ehrgate.pdf import text_pdf
from tests.client.live import Cast

PDF = text_pdf(["Sodium 140 mmol/L"], title="Lab report")


def run_demo() -> str:
    """What `ehrgate demo` (all its acts, against its own gateway) prints; it must succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "ehrgate", "demo", "--expiry", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Run:
    """`ehrgate` as a subprocess, with the gateway and a pins file in its environment."""

    def __init__(self, cast: Cast, pins: Path, cwd: Path) -> None:
        self.cast, self.pins, self.cwd = cast, pins, cwd

    def __call__(
        self, *args: str | Path, who: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")},
            "EHRGATE_URL": self.cast.url,
            "EHRGATE_KNOWN_LEDGERS": str(self.pins),
            **(env or {}),
        }
        command = [sys.executable, "-m", "ehrgate"]
        if who is not None:
            command += ["--as", str(self.cast.key_file(who))]
        return subprocess.run(
            [*command, *map(str, args)],
            capture_output=True,
            text=True,
            env=environment,
            cwd=self.cwd,
            timeout=120,
            check=False,
        )

    def json(self, *args: str | Path, who: str | None = None) -> Any:
        result = self(*args, "--json", who=who)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def fails(result: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr


def upload_one(ehrgate: Run, cast: Cast, tmp_path: Path, category: str = "lab-results") -> str:
    source = tmp_path / "report.pdf"
    source.write_bytes(PDF)
    out = ehrgate.json(
        "upload", "--patient", cast.pseudonym, "--category", category, source, who="system"
    )
    record_id: str = out["uploaded"][0]["record"]["record_id"]
    return record_id
