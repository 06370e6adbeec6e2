"""The browser app's crypto unit tests (web/test/, node's test runner) pinned to
tests/vectors/envelope/, run from pytest so that `./dev test` covers them; and the app's
TypeScript type check (strict)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"


def _node_modules() -> None:
    if shutil.which("node") is None:
        pytest.fail("the web app's tests need Node.js 20")
    if not (WEB / "node_modules" / "esbuild").is_dir():
        pytest.fail("web/node_modules is missing: run web/build (./dev runs it)")


def test_crypto_unit_tests_pass_against_the_vectors() -> None:
    _node_modules()
    env = {**os.environ, "EHRGATE_VECTORS": str(ROOT / "tests" / "vectors" / "envelope")}
    subprocess.run(["node", "build.mjs", "--tests"], cwd=WEB, check=True, env=env, timeout=300)
    run = subprocess.run(
        ["node", "--test", "dist-test/"],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    counts = dict(re.findall(r"^# (tests|pass|fail) (\d+)$", run.stdout, re.MULTILINE))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert counts.get("fail") == "0"
    assert int(counts.get("pass", "0")) >= 90, counts


def test_typescript_is_strict_and_type_checks() -> None:
    _node_modules()
    config = (WEB / "tsconfig.json").read_text()
    assert '"strict": true' in config
    run = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "tsc"), "-p", str(WEB)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:]


def test_web_lock_names_only_registry_packages() -> None:
    lock = (WEB / "package-lock.json").read_text()
    for url in re.findall(r'"resolved": "([^"]+)"', lock):
        assert url.startswith("https://registry.npmjs.org/"), url
    assert "git+" not in lock
    assert "github:" not in lock
