"""Re-keying time: a patient rotates K over 10,000 records, against baselines of the same run.

    ./dev python -m bench.rekey [--records 10000] [--batch 200]

An embedded gateway (real uvicorn on loopback, SQLite ledger, local blob directory) runs in
this process. A hospital system uploads the records (small documents over 4 categories and
12 months, 8 uploads at a time through the SDK); then the patient rotates K with
`Client.rotate_keys`: publish the new generation's keys, rewrap every capsule (open with
the old K, rewrap, open with the new K, sign a `rekey`; batches of --batch records per
request, committed together), re-share with the grantee. Two baselines, measured in the
same run on the same machine: uploading the same records through the same gateway, and
sealing as many capsules in memory (the envelope alone, no I/O).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import click

from ehrgate._client.rekey import RotationProgress
from envelope import PatientKeys, Sealer, load_key_file
from envelope.scoped import next_period, scoped_private_key
from tests.client.live import Cast, live_cast

CATEGORIES = ("history-physical", "lab-results", "radiation-dose", "treatment-summary")
THIS = datetime.now(UTC).strftime("%Y-%m")


def _document(n: int) -> bytes:
    return f"%PDF-1.4 bench record {n} ".encode() * 8


def _created(n: int) -> str:
    return f"{next_period(THIS, -(n % 12))}-{n % 28 + 1:02d}T09:00:00Z"


def _upload(cast: Cast, records: int) -> float:
    with cast.client(cast.system, max_connections=16) as system:

        def one(n: int) -> None:
            system.upload(
                io.BytesIO(_document(n)),
                pseudonym=cast.pseudonym,
                category=CATEGORIES[n % len(CATEGORIES)],
                created_at=_created(n),
                filename=f"r{n}.pdf",
            )

        start = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(records)))
        return time.perf_counter() - start


def _seal_only(cast: Cast, records: int) -> float:
    """Seal as many small documents in memory, each to its scoped key (the envelope alone)."""
    patient = cast.patient
    keys = {
        (c, p): scoped_private_key(patient.patient_key, c, p).public_key()
        for c in CATEGORIES
        for p in (next_period(THIS, -n) for n in range(12))
    }
    start = time.perf_counter()
    for n in range(records):
        category, created = CATEGORIES[n % len(CATEGORIES)], _created(n)
        sealer = Sealer(
            recipients=[(patient.pseudonym, keys[(category, created[:7])])],
            scoped=True,
            filename=f"r{n}.pdf",
            content_type="application/pdf",
            pseudonym=patient.pseudonym,
            category=category,
            created_at=created,
            uploader_id=cast.system.id,
            signer=cast.system,
        )
        try:
            sealer.update(_document(n))
            sealer.finalize()
        finally:
            sealer.close()
    return time.perf_counter() - start


@click.command()
@click.option("--records", default=10_000, show_default=True)
@click.option("--batch", default=200, show_default=True, help="Records per rekey request.")
def main(records: int, batch: int) -> None:
    load = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="bench-rekey-", ignore_cleanup_errors=True) as scratch,
        live_cast(Path(scratch)) as cast,
    ):
        with cast.client(cast.patient) as patient:
            missing = set(CATEGORIES) - set(patient.categories())
            if missing:
                raise click.UsageError(f"the ledger lacks the categories {sorted(missing)}")
            patient.publish_keys(12, start=next_period(THIS, -11))
        uploaded = _upload(cast, records)
        sealed = _seal_only(cast, records)
        phases: dict[str, float] = {}

        def progress(step: RotationProgress) -> None:
            phases.setdefault(step.phase, time.perf_counter())

        key_file = cast.key_file("patient")
        start = time.perf_counter()
        with cast.client(cast.patient) as patient:
            done = patient.rotate_patient_key(key_file, progress=progress, batch=batch)
        rotated = time.perf_counter() - start
        keys = load_key_file(key_file)
        if not isinstance(keys, PatientKeys) or keys.key_generation != 2:
            raise click.ClickException("the key file was not rotated to generation 2")
        if done.rewrapped != records or done.unopened:
            raise click.ClickException(f"rewrapped {done.rewrapped} of {records} records")
    rewrap = phases["reshare"] - phases["rewrap"]
    click.echo(
        f"re-keying {records:,} records (batch {batch}), 2 CPUs, load average {load:.2f} "
        f"before, {os.getloadavg()[0]:.2f} after"
    )
    click.echo(f"{'step':<44} {'seconds':>8} {'records/s':>10} {'÷ baseline':>11}")
    rows = [
        ("upload through the gateway (baseline)", uploaded, 1.0),
        ("seal capsules in memory (baseline 2)", sealed, None),
        ("rotate K: whole rotation", rotated, rotated / uploaded),
        ("  of it: rewrap + commit rekeys", rewrap, rewrap / uploaded),
        (f"  publish {done.published} keys", phases["rewrap"] - phases["publish"], None),
    ]
    for name, seconds, ratio in rows:
        shown = f"{ratio:>11.2f}" if ratio is not None else f"{'':>11}"
        click.echo(f"{name:<44} {seconds:>8.2f} {records / seconds:>10,.0f} {shown}")
    click.echo(f"rotation ÷ sealing the same capsules in memory: {rotated / sealed:.1f}")


if __name__ == "__main__":
    main()
