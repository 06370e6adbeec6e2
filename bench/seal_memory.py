"""M1: peak RSS growth while sealing and while opening a 1 GiB file.

    ./dev python -m bench.seal_memory [--size-mib 1024] [--dir DIR]

Writes a plaintext file of the given size (random bytes), then in a fresh subprocess for
each operation: loads keys, reads VmRSS, resets the peak (VmHWM, via /proc/self/clear_refs),
seals file to file with `envelope.seal` (or opens with `open_capsule` + `open_body` into a
file, as `ehrgate open` does), reads VmHWM, and reports the growth. Page cache is not part
of RSS, so only the process's own buffers count.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

import click

from envelope import (
    IdentityKeys,
    PatientKeys,
    SealResult,
    load_key_file,
    open_body,
    open_capsule,
    read_chunks,
    seal,
    write_key_file,
)

MIB = 1024 * 1024
TARGET_MIB = 64


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(operation: str, workdir: Path) -> dict[str, object]:
    patient = load_key_file(workdir / "patient.key")
    uploader = load_key_file(workdir / "system.key")
    assert isinstance(patient, PatientKeys)
    assert isinstance(uploader, IdentityKeys)
    plain, body, capsule = workdir / "plain.bin", workdir / "body.sealed", workdir / "body.capsule"
    record_private = patient.patient_key.record_private_key()

    def seal_file(source: BinaryIO, out: BinaryIO, filename: str) -> SealResult:
        return seal(
            source,
            out,
            recipients=[(patient.pseudonym, record_private.public_key())],
            filename=filename,
            content_type="application/octet-stream",
            pseudonym=patient.pseudonym,
            category="bench",
            created_at="2026-01-31T12:00:00Z",
            uploader_id=uploader.id,
            signer=uploader,
        )

    # warm up the code paths once on a small input so that lazy imports are not counted
    seal_file(io.BytesIO(b"warm-up"), io.BytesIO(), "w")
    before = status_kib("VmRSS")
    peak_reset = reset_peak()
    if operation == "seal":
        with plain.open("rb") as source, body.open("wb") as out:
            result = seal_file(source, out, "plain.bin")
        capsule.write_bytes(result.capsule)
    else:
        opened = open_capsule(capsule.read_bytes(), record_private, patient.pseudonym)
        with body.open("rb") as source, (workdir / "opened.bin").open("wb") as out:
            for piece in open_body(read_chunks(source), opened):
                out.write(piece)
    peak = status_kib("VmHWM")
    return {
        "operation": operation,
        "rss_before_kib": before,
        "peak_kib": peak,
        "peak_reset": peak_reset,
    }


def write_plaintext(path: Path, size_mib: int) -> None:
    block = os.urandom(MIB)
    with (
        path.open("wb") as out,
        click.progressbar(range(size_mib), label="writing the plaintext", file=sys.stderr) as bar,
    ):
        for index in bar:
            # vary each MiB cheaply so the file is not one repeated block
            out.write(index.to_bytes(8, "big") + block[8:])


@click.command()
@click.option("--size-mib", default=1024, show_default=True)
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False), help="Where to put the files."
)
@click.option("--child", "child_operation", type=click.Choice(["seal", "open"]), hidden=True)
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), hidden=True)
def main(
    size_mib: int, directory: str | None, child_operation: str | None, workdir: Path | None
) -> None:
    """Measure M1 and print a table."""
    if child_operation is not None:
        assert workdir is not None
        click.echo(json.dumps(child(child_operation, workdir)))
        return
    with tempfile.TemporaryDirectory(dir=directory, prefix="ehrgate-m1-") as temporary:
        work = Path(temporary)
        write_key_file(work / "patient.key", PatientKeys.generate({"mrn": "BENCH-0001"}))
        write_key_file(work / "system.key", IdentityKeys.generate("bench-system", "system"))
        write_plaintext(work / "plain.bin", size_mib)
        rows = []
        for operation in ("seal", "open"):
            output = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.seal_memory",
                    "--child",
                    operation,
                    "--workdir",
                    str(work),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(output))
        if (work / "opened.bin").stat().st_size != size_mib * MIB:
            raise SystemExit("the opened file has the wrong size")
    click.echo(f"M1 peak RSS growth, {size_mib} MiB file (target ≤ {TARGET_MIB} MiB)")
    click.echo(f"{'operation':<10} {'RSS before MiB':>15} {'peak MiB':>10} {'growth MiB':>11}")
    for row in rows:
        before, peak = int(row["rss_before_kib"]) / 1024, int(row["peak_kib"]) / 1024
        note = "" if row["peak_reset"] else "  (peak not reset: includes start-up)"
        click.echo(
            f"{row['operation']:<10} {before:>15.1f} {peak:>10.1f} {peak - before:>11.1f}{note}"
        )


if __name__ == "__main__":
    main()
