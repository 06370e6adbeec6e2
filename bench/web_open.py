"""Opening a 20 MiB PDF in the web app ÷ the SDK's fetch and open of the same record.

    ./dev python -m bench.web_open [--size-mib 20] [--rounds 7]

`ehrgate serve` runs in a process of its own on 127.0.0.1 (uvicorn, SQLite ledger, the
default local store, a fresh data directory). Its admin enrolls a clinician, registers a
patient who grants the clinician read access to lab results and shares the month keys,
and the SDK uploads a PDF of `--size-mib` MiB. Then, alternating round by round:

- the browser: Debian's Chromium, headless, driven by bench/web_open.mjs through
  playwright-core, signed in to /app/ as the clinician; one round is the press of "Open"
  until the app shows the document verified (ledger proof and consistency, key share,
  capsule, the body streamed and decrypted segment by segment in the crypto worker, both
  hashes, the uploader's signature), timed in the page;
- the baseline: `Client.fetch_bytes` of the same record by the same clinician, signed in
  once, which does the same checks in Python.

The table gives each side's median and the ratio of the medians (target ≤ 2), and the
longest task the page's own thread ran during an open, as the browser's long-task timing
reports it (tasks of 50 ms or more): the body's crypto runs in the worker, so the page
answers while a large PDF decrypts.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import click
import httpx

from bench._cast import lab_results_cast
from bench._http import free_port, run_server
from ehrgate import Client
from envelope.keyfile import encode_key_file

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
MIB = 1024 * 1024


def make_pdf(size: int) -> bytes:
    """A valid one-page PDF padded with a comment to *size* bytes."""
    head = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n"
    )
    tail = b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    pad = size - len(head) - len(tail) - 3
    return head + b"% " + os.urandom(pad // 2 + 1).hex().encode()[:pad] + b"\n" + tail


class BrowserSide:
    """bench/web_open.mjs, spoken to line by line."""

    def __init__(self, plan: dict[str, Any]) -> None:
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        self.process = subprocess.Popen(
            ["node", str(ROOT / "bench" / "web_open.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._send(json.dumps(plan))
        self._answer()

    def _send(self, line: str) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def _answer(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError("the browser side stopped")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def open(self) -> dict[str, Any]:
        self._send("open")
        return self._answer()

    def close(self) -> None:
        if self.process.poll() is None:
            self._send("quit")
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@click.command()
@click.option("--size-mib", type=click.IntRange(1, 512), default=20)
@click.option("--rounds", type=click.IntRange(1, 100), default=7)
def main(size_mib: int, rounds: int) -> None:
    if shutil.which("node") is None or not CHROMIUM.exists():
        raise click.ClickException("needs Node.js and Debian's /usr/bin/chromium")
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        raise click.ClickException("web/dist is not built: run web/build (./dev runs it)")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        data_dir = Path(tmp) / "data"
        env = {
            "EHRGATE_DATA_DIR": str(data_dir),
            "EHRGATE_LOG_LEVEL": "warning",
            "EHRGATE_WEB_DIR": str(ROOT / "web" / "dist"),
        }
        with (
            run_server(
                ["-m", "ehrgate", "serve", "--port", str(port)], port=port, env=env
            ) as server,
            httpx.Client(base_url=server.url, timeout=600) as http,
        ):
            cast = lab_results_cast(http, data_dir)
            doctor, system, patient = cast.doctor, cast.system, cast.patient
            pdf = make_pdf(size_mib * MIB)
            (Path(tmp) / "bench.pdf").write_bytes(pdf)
            with Client(server.url, system) as sdk:
                record_id = sdk.upload(
                    Path(tmp) / "bench.pdf", pseudonym=patient.pseudonym, category="lab-results"
                ).record.record_id
            key_file = Path(tmp) / "dr-bench.key"
            key_file.write_bytes(encode_key_file(doctor))
            browser = BrowserSide(
                {
                    "url": server.url,
                    "web_dir": str(ROOT / "web"),
                    "chromium": str(CHROMIUM),
                    "key_file": str(key_file),
                    "pseudonym": patient.pseudonym,
                }
            )
            sdk_times: list[float] = []
            web_times: list[float] = []
            longest: list[float] = []
            try:
                with Client(server.url, doctor) as reader:
                    _, first = reader.fetch_bytes(record_id)  # warm: sign-in, key share
                    if first != pdf:
                        raise RuntimeError("the SDK opened other bytes")
                    browser.open()  # warm: the worker, the PDF viewer
                    for _ in range(rounds):
                        started = time.perf_counter()
                        _, data = reader.fetch_bytes(record_id)
                        sdk_times.append((time.perf_counter() - started) * 1000)
                        if len(data) != len(pdf):
                            raise RuntimeError("short SDK read")
                        answer = browser.open()
                        web_times.append(float(answer["ms"]))
                        longest.append(float(answer["longest_task_ms"]))
            finally:
                browser.close()
    web = statistics.median(web_times)
    base = statistics.median(sdk_times)
    out = io.StringIO()
    out.write(f"open a {size_mib} MiB PDF, {rounds} rounds each, medians\n")
    out.write(f"  browser (web app, Chromium)  {web:8.1f} ms   ({_spread(web_times)})\n")
    out.write(f"  SDK fetch_bytes (baseline)   {base:8.1f} ms   ({_spread(sdk_times)})\n")
    out.write(f"  ratio browser / SDK          {web / base:8.2f}     (target <= 2)\n")
    # the browser reports only tasks of 50 ms or more ("long tasks")
    worst = max(longest)
    out.write(
        "  page's longest task while opening: "
        + (f"{worst:.0f} ms\n" if worst > 0 else "none of 50 ms or more\n")
    )
    click.echo(out.getvalue(), nl=False)


def _spread(times: list[float]) -> str:
    return f"{min(times):.0f} to {max(times):.0f}"


if __name__ == "__main__":
    main()
