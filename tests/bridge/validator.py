"""The independent FHIR validator (npm `fhir`, FHIR.js, offline) the e2e tests use."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

DIRECTORY = Path(__file__).resolve().parents[1] / "node" / "fhir-validator"
INSTALL = f"cd {DIRECTORY} && npm ci --omit=optional --no-audit --no-fund"


def validate(resources: list[Any]) -> list[list[dict[str, str]]]:
    """For each resource, the validator's error messages (empty when valid)."""
    if not (DIRECTORY / "node_modules" / "fhir").is_dir():
        pytest.fail(f"the FHIR validator is not installed: run `{INSTALL}`")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (the FHIR validator runs on Node.js 20)")
    lines = "".join(json.dumps(resource) + "\n" for resource in resources)
    done = subprocess.run(
        [node, str(DIRECTORY / "validate.mjs")],
        input=lines.encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the FHIR validator failed: {done.stderr.decode()[-2000:]}")
    results = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    assert len(results) == len(resources)
    return [
        [m for m in result["messages"] if m.get("severity") in ("error", "fatal")]
        for result in results
    ]
