"""The gateway's image serves the browser app: the Dockerfile builds web/dist in a Node.js
stage from the npm lock and the final stage serves that build at /app/. No Docker daemon is
needed: the Dockerfile is read and checked instruction by instruction."""

from __future__ import annotations

import re
from pathlib import Path

from gateway import Settings

ROOT = Path(__file__).resolve().parents[2]
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")
    ))  # fmt: skip
    out = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        word, _, rest = line.strip().partition(" ")
        out.append((word, rest.strip()))
    return out


def _stages(text: str) -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    name = ""
    for word, rest in _instructions(text):
        if word == "FROM":
            found = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert found, rest
            name = found.group(2) or "final"
            stages[name] = []
        stages[name].append((word, rest))
    return stages


def test_the_dockerfile_is_made_of_known_instructions() -> None:
    parsed = _instructions((ROOT / "Dockerfile").read_text())
    assert parsed[0][0] == "FROM"
    assert [word for word, _ in parsed if word not in INSTRUCTIONS] == []


def test_the_parser_refuses_what_is_not_a_dockerfile() -> None:
    parsed = _instructions("FROM python:3.11.10-slim-bookworm\nCOPY a b \\\n  c\nRUNN x\n")
    assert parsed == [("FROM", "python:3.11.10-slim-bookworm"), ("COPY", "a b    c"), ("RUNN", "x")]
    assert [word for word, _ in parsed if word not in INSTRUCTIONS] == ["RUNN"]


def test_the_image_builds_and_serves_the_web_app() -> None:
    stages = _stages((ROOT / "Dockerfile").read_text())
    web = stages["web"]
    assert web[0][1].startswith("node:20."), web[0]
    runs = [rest for word, rest in web if word == "RUN"]
    copies = [rest for word, rest in web if word == "COPY"]
    # the packages exactly as the lock pins them, then esbuild over the sources
    assert any(rest.startswith("npm ci") for rest in runs), runs
    assert "node build.mjs" in runs
    assert any("web/package-lock.json" in rest for rest in copies), copies
    assert any(rest.startswith("web/src ") for rest in copies), copies
    for name in ("build.mjs", "tsconfig.json"):
        assert any(f"web/{name}" in rest for rest in copies), name
    final = stages["final"]
    served = [rest for word, rest in final if word == "COPY" and rest.startswith("--from=web ")]
    assert served, "the final stage copies the web build"
    source, target = served[0].split()[1:]
    assert source == "/web/dist"
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert f"EHRGATE_WEB_DIR={target}" in env
    assert Settings(web_dir=Path(target)).web_dir == Path(target)
    # what the build stage writes is what the app needs: every file web/build.mjs copies
    build = (ROOT / "web" / "build.mjs").read_text()
    assert 'outfile: join(here, "dist/app.js")' in build
    assert 'outfile: join(here, "dist/worker.js")' in build
