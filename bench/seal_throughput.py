"""P2: seal throughput (encrypt + hash) ÷ hashlib SHA-256 throughput, measured side by side.

    ./dev python -m bench.seal_throughput [--size-mib 256] [--rounds 5]

Both sides take the same plaintext in 1 MiB pieces, as an upload arrives. The baseline
hashes them once with hashlib SHA-256. Sealing (a `Sealer`) hashes the plaintext (for the
signed metadata), encrypts it with AES-256-GCM in 64 KiB segments, hashes the sealed body
(for content addressing) and makes the capsule. It is run with the plaintext hash on a
helper thread (the default) and, for comparison, with everything on one thread. Rounds
alternate between the contenders; the table shows each one's median.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import click

import envelope._digest
from envelope import IdentityKeys, OpenedCapsule, PatientKeys, Sealer, open_capsule
from envelope.body import BodyOpener

MIB = 1024 * 1024
UII = {"mrn": "BENCH-0001"}


def sha256_only(chunks: Sequence[bytes]) -> None:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    digest.hexdigest()


def make_sealer(patient: PatientKeys, uploader: IdentityKeys) -> Sealer:
    return Sealer(
        recipients=[(patient.pseudonym, patient.patient_key.record_public_key())],
        filename="bench.pdf",
        content_type="application/pdf",
        pseudonym=patient.pseudonym,
        category="bench",
        created_at="2026-01-31T12:00:00Z",
        uploader_id=uploader.id,
        signer=uploader,
    )


def seal_discarding(chunks: Sequence[bytes], patient: PatientKeys, uploader: IdentityKeys) -> None:
    sealer = make_sealer(patient, uploader)
    for chunk in chunks:
        sealer.update_segments(chunk)
    sealer.finalize_segments()
    sealer.result  # noqa: B018 - the capsule is part of sealing


def open_all(body: Sequence[bytes], opened: OpenedCapsule) -> None:
    opener: BodyOpener = opened.body_opener()
    for piece in body:
        opener.update_pieces(piece)
    opener.finalize()


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def single_threaded(action: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        saved = envelope._digest.OFFLOAD_THRESHOLD
        envelope._digest.OFFLOAD_THRESHOLD = sys.maxsize
        try:
            action()
        finally:
            envelope._digest.OFFLOAD_THRESHOLD = saved

    return run


@click.command()
@click.option("--size-mib", default=256, show_default=True, help="Plaintext size per round.")
@click.option("--rounds", default=5, show_default=True, help="Rounds per contender.")
def main(size_mib: int, rounds: int) -> None:
    """Measure P2 and print a table."""
    chunks = [os.urandom(MIB) for _ in range(size_mib)]
    patient = PatientKeys.generate(UII)
    uploader = IdentityKeys.generate("bench-system", "system")
    # a body and its capsule to open, sealed once before measuring
    sealer = make_sealer(patient, uploader)
    sealed_body_pieces = [bytes(p) for c in chunks for p in sealer.update_segments(c)]
    sealed_body_pieces += [bytes(p) for p in sealer.finalize_segments()]
    opened = open_capsule(
        sealer.result.capsule, patient.patient_key.record_private_key(), patient.pseudonym
    )
    body_chunks = [
        b"".join(sealed_body_pieces[i : i + 16]) for i in range(0, len(sealed_body_pieces), 16)
    ]

    contenders: dict[str, Callable[[], None]] = {
        "hashlib SHA-256 (baseline)": lambda: sha256_only(chunks),
        "seal, plaintext hash on helper thread": lambda: seal_discarding(chunks, patient, uploader),
        "seal, one thread": single_threaded(lambda: seal_discarding(chunks, patient, uploader)),
        "open (decrypt + verify hash)": lambda: open_all(body_chunks, opened),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    order = [name for _ in range(rounds) for name in contenders]
    with click.progressbar(
        order, label="measuring", file=sys.stderr if sys.stderr.isatty() else open(os.devnull, "w")
    ) as bar:
        for name in bar:
            times[name].append(timed(contenders[name]))

    baseline = statistics.median(times["hashlib SHA-256 (baseline)"])
    click.echo(
        f"P2 seal throughput ÷ SHA-256 throughput: {size_mib} MiB per round, {rounds} rounds, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    click.echo(f"{'contender':<40} {'MiB/s':>8} {'÷ SHA-256':>10}")
    for name, samples in times.items():
        seconds = statistics.median(samples)
        click.echo(f"{name:<40} {size_mib / seconds:>8.0f} {baseline / seconds:>10.2f}")
    p2 = baseline / statistics.median(times["seal, plaintext hash on helper thread"])
    click.echo(f"P2 = {p2:.2f} (target ≥ 0.80)")


if __name__ == "__main__":
    main()
