"""Import throughput: `ehrgate import-aria` files per second against sequential SDK uploads.

    ./dev python -m bench.import_aria [--files 2000] [--concurrency 1,4,16,32]

An embedded gateway (real uvicorn on loopback, SQLite ledger, local blob directory) runs
in this process; each import runs as the command a hospital would run, in a subprocess,
on a fresh export of small one-page PDFs for one patient (a fresh patient per row, so no
row sees another's records). The baseline is the same number of uploads made one after
the other with `Client.upload` in this process, measured in the same run.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from ehrgate.pdf import text_pdf
from tests.client.live import Cast, live_cast, new_patient

FOLDERS = ("Laboratory Results", "Radiation Dose", "History and Physical")


def _patient(cast: Cast) -> str:
    patient = new_patient(os.urandom(6).hex())
    with cast.client(patient) as client:
        client.register_patient()
        client.grant(
            cast.system.id,
            rights=["write"],
            categories="all",
            not_after=datetime.now(UTC) + timedelta(days=1),
        )
    return patient.pseudonym


def _export(root: Path, files: int) -> None:
    for index in range(files):
        folder = root / "MRN1" / FOLDERS[index % len(FOLDERS)]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc-{index:05d}.pdf").write_bytes(text_pdf([f"document {index}"]))


def _import(cast: Cast, work: Path, files: int, concurrency: int) -> float:
    export = work / f"export-{concurrency}"
    _export(export, files)
    mapping = work / f"map-{concurrency}.csv"
    mapping.write_text(f"mrn,pseudonym\nMRN1,{_patient(cast)}\n")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EHRGATE_")},
        "EHRGATE_KNOWN_LEDGERS": str(work / "pins.json"),
    }
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "ehrgate", "--gateway", cast.url,
            "--as", str(cast.key_file("system")), "import-aria", str(export),
            "--mapping", str(mapping), "--concurrency", str(concurrency),
        ],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return files / (time.perf_counter() - started)


def _sequential(cast: Cast, files: int) -> float:
    pseudonym = _patient(cast)
    pdfs = [text_pdf([f"document {index}"]) for index in range(files)]
    with cast.client(cast.system) as system:
        system.patient(pseudonym)
        started = time.perf_counter()
        for index, pdf in enumerate(pdfs):
            system.upload(
                io.BytesIO(pdf),
                pseudonym=pseudonym,
                category="lab-results",
                filename=f"doc-{index}.pdf",
            )
        return files / (time.perf_counter() - started)


@click.command()
@click.option("--files", default=2000, show_default=True, help="Files per import.")
@click.option("--concurrency", default="1,4,16,32", show_default=True)
def main(files: int, concurrency: str) -> None:
    levels = [int(level) for level in concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        work = Path(scratch)
        with live_cast(work) as cast:
            baseline = _sequential(cast, files)
            rows = [("SDK uploads, one at a time", baseline)]
            for level in levels:
                rows.append(
                    (f"import-aria --concurrency {level}", _import(cast, work, files, level))
                )
    click.echo(f"{files} one-page PDFs per row, {os.cpu_count()} CPUs")
    click.echo(f"{'what':<32} {'files/s':>8} {'ratio':>6}")
    for name, rate in rows:
        click.echo(f"{name:<32} {rate:>8.0f} {rate / baseline:>6.2f}")


if __name__ == "__main__":
    main()
