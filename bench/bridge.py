"""P10: the bridge against the SDK it is built on, the same 1 MiB PDF, in one run.

    ./dev python -m bench.bridge [--rounds 12] [--size 1048576]

An embedded gateway (real uvicorn on loopback, SQLite ledger, local blobs) runs in this
process and a bridge in front of it (real uvicorn on loopback) in its own process, as a
hospital runs it. Each round, interleaved:
ITI-105 publish (`POST /fhir/DocumentReference`, the PDF base64 inline) against an SDK
`Client.upload` of the same bytes as the same system identity (the sender's request body
is made before its clock starts, as the SDK's PDF is in memory before its own: the ratio
measures the bridge, not the sender's JSON library; that time is printed too); ITI-68 retrieve (`GET
/fhir/Binary/ID`) against an SDK `Client.fetch_bytes` of the same record as the same
clinician. Both sides seal or verify fully; the bridge adds FHIR parsing, base64 and
one more loopback hop. Ratios are bytes/s (bridge ÷ SDK) from the median times.

CPU per operation is printed too (it moves less than wall time on a shared machine): the
bridge process's (from /proc, summed over the rounds) and this process's (the client, and
the gateway serving it).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import httpx

from bridge.keystore import KeyStore
from bridge.settings import BridgeSettings
from ehrgate.embedded import free_port
from ehrgate.links import make_link_statement
from tests.bridge.conftest import MRN, TOKENS
from tests.bridge.live import PASSPHRASE, FixedTokens, bridge_settings
from tests.bridge.samples import document_reference, pdf
from tests.client.live import live_cast


def serve(settings_json: str, port: int) -> None:
    """The bridge process: the app with the test tokens, on loopback."""
    import uvicorn

    from bridge.app import create_bridge_app

    settings = BridgeSettings.model_validate_json(settings_json)
    app = create_bridge_app(settings, [FixedTokens(TOKENS)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def bridge_process(settings: BridgeSettings) -> Iterator[tuple[str, int]]:
    port = free_port()
    document = settings.model_dump_json()
    document = json.dumps({**json.loads(document), "passphrase": PASSPHRASE})
    code = "import sys; from bench.bridge import serve; serve(sys.argv[1], int(sys.argv[2]))"
    child = subprocess.Popen([sys.executable, "-c", code, document, str(port)])
    url = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/metadata").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the bridge process did not start")
            time.sleep(0.1)
        yield url, child.pid
    finally:
        child.terminate()
        child.wait(timeout=30)


_FHIR = {"Content-Type": "application/fhir+json"}


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


@click.command()
@click.option("--rounds", default=12, show_default=True)
@click.option("--size", default=1024 * 1024, show_default=True)
def main(rounds: int, size: int) -> None:
    with tempfile.TemporaryDirectory() as work, live_cast(Path(work)) as cast:
        settings = bridge_settings(
            Path(work) / "bridge", cast.url, max_document_bytes=max(size * 2, 4 << 20)
        )
        store = KeyStore(settings.keys_dir, PASSPHRASE)
        for keys in (cast.system, cast.doctor, cast.auditor):
            store.add(keys)
        statement = make_link_statement(cast.patient, hospital="st-elsewhere", mrn=MRN)
        path = Path(work) / "link.json"
        path.write_text(json.dumps(statement.to_json()))
        link = [sys.executable, "-m", "ehrgate", "bridge", "link", "add", str(path)]
        environment = {
            f"EHRGATE_BRIDGE_{k.upper()}": str(v)
            for k, v in {
                "gateway_url": cast.url,
                "hospital_id": settings.hospital_id,
                "system_identity": settings.system_identity,
                "data_dir": settings.data_dir,
                "passphrase": PASSPHRASE,
            }.items()
        }
        subprocess.run(link, env={**os.environ, **environment}, check=True)
        with (
            bridge_process(settings) as (fhir, pid),
            cast.client(cast.system) as system,
            cast.client(cast.doctor) as doctor,
            httpx.Client(headers={"Authorization": "Bearer system"}, timeout=120) as publisher,
            httpx.Client(headers={"Authorization": "Bearer doctor"}, timeout=120) as reader,
        ):
            content = pdf(size - 16)
            timings: dict[str, list[float]] = {
                "sdk_up": [],
                "encode": [],
                "iti105": [],
                "sdk_get": [],
                "iti68": [],
            }
            cpu = dict.fromkeys(("sdk_up", "iti105", "iti105_bridge"), 0.0)
            for round_ in range(rounds + 1):  # the first round warms up and is dropped
                counted = 1.0 if round_ else 0.0
                started = time.perf_counter()
                here = time.process_time()
                uploaded = system.upload(
                    io.BytesIO(content),
                    pseudonym=cast.pseudonym,
                    category="lab-results",
                    filename="a.pdf",
                )
                timings["sdk_up"].append(time.perf_counter() - started)
                cpu["sdk_up"] += counted * (time.process_time() - here)
                started = time.perf_counter()
                body = json.dumps(document_reference(content)).encode()
                timings["encode"].append(time.perf_counter() - started)
                there = process_cpu(pid)
                here = time.process_time()
                started = time.perf_counter()
                answer = publisher.post(f"{fhir}/DocumentReference", content=body, headers=_FHIR)
                timings["iti105"].append(time.perf_counter() - started)
                cpu["iti105"] += counted * (time.process_time() - here)
                cpu["iti105_bridge"] += counted * (process_cpu(pid) - there)
                assert answer.status_code == 201, answer.text
                record_id = answer.headers["location"].rsplit("/", 1)[1]
                started = time.perf_counter()
                _, fetched = doctor.fetch_bytes(uploaded.record.record_id)
                timings["sdk_get"].append(time.perf_counter() - started)
                started = time.perf_counter()
                retrieved = reader.get(
                    f"{fhir}/Binary/{record_id}", headers={"Accept": "application/pdf"}
                )
                timings["iti68"].append(time.perf_counter() - started)
                assert fetched == content
                assert retrieved.content == content
            for values in timings.values():
                del values[0]
    up = _median_ms(timings["sdk_up"]) / _median_ms(timings["iti105"])
    get = _median_ms(timings["sdk_get"]) / _median_ms(timings["iti68"])
    click.echo(f"P10 bridge vs SDK, {size} byte PDF, {rounds} rounds (median ms)")
    click.echo(
        f"  publish: SDK upload {_median_ms(timings['sdk_up']):.1f}  "
        f"ITI-105 {_median_ms(timings['iti105']):.1f}  ratio {up:.2f}  (target ≥ 0.8)"
    )
    click.echo(
        f"  the sender's JSON (its base64 and json.dumps: {_median_ms(timings['encode']):.1f}) "
        "is made before the clock starts"
    )
    per = {key: value / rounds * 1000 for key, value in cpu.items()}
    click.echo(
        f"  publish CPU per document (ms): SDK upload, client and gateway {per['sdk_up']:.1f}; "
        f"ITI-105 bridge {per['iti105_bridge']:.1f} + client and gateway {per['iti105']:.1f}"
    )
    click.echo(
        f"  retrieve: SDK fetch {_median_ms(timings['sdk_get']):.1f}  "
        f"ITI-68 {_median_ms(timings['iti68']):.1f}  ratio {get:.2f}  (target ≥ 0.8)"
    )


if __name__ == "__main__":
    main()
