"""Break-glass reads: what finding a live session costs next to a grant's check.

    ./dev python -m bench.break_glass [--sessions 100,10000] [--queries 20000]

A ledger on a temporary SQLite file holds N patients who opted in, each with one open
break-glass session (N signed policies and N signed acts, committed as the gateway would).
Then, timed one read decision at a time with perf_counter_ns: `Ledger.check` of a clinician
holding a read grant (the common read), and `gateway.emergency.live_session` of the session's
clinician (what a read that no grant allows costs extra). Both are in-memory; the ratio of
their medians, measured in the same run, is what the table reports.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from envelope import IdentityKeys, SigningKey
from gateway.emergency import live_session
from ledger import Ledger
from ledger.wire import builders as b

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


class _Clock:
    def __call__(self) -> datetime:
        return T0


def _build(url: str, sessions: int) -> tuple[Ledger, list[str], IdentityKeys, IdentityKeys]:
    ledger = Ledger.open(url, SigningKey.generate(), clock=_Clock(), create_schema=True)
    admin = IdentityKeys.generate("admin-1", "admin")
    ledger.bootstrap(admin.public())
    emergency = IdentityKeys.generate("emergency@bench", "system")
    clinician = IdentityKeys.generate("dr-er@bench", "clinician")
    reader = IdentityKeys.generate("dr-reader", "clinician")
    for keys in (emergency, clinician, reader):
        ledger.submit(b.enroll(admin, keys.public(), issued_at=T0))
    pseudonyms: list[str] = []
    batch = []
    for n in range(sessions):
        patient = IdentityKeys.generate(f"{n:064x}", "patient")
        pseudonym = patient.id
        pseudonyms.append(pseudonym)
        batch.append(b.register_patient(patient, pseudonym, b"k", issued_at=T0))
        batch.append(b.break_glass_policy(
            patient, pseudonym=pseudonym, emergency_identity=emergency.id,
            categories=["lab-results"], roles=["clinician"], max_minutes=60,
            not_before=T0 - timedelta(hours=1), not_after=T0 + timedelta(days=1), issued_at=T0,
        ))  # fmt: skip
        batch.append(b.grant(
            patient, pseudonym=pseudonym, grantee=reader.id, rights=["read"],
            categories=["lab-results"], not_before=T0 - timedelta(hours=1),
            not_after=T0 + timedelta(days=1), issued_at=T0,
        ))  # fmt: skip
        batch.append(b.break_glass(
            clinician, pseudonym=pseudonym, emergency_identity=emergency.id,
            reason="unconscious-patient", details="bench", minutes=60, issued_at=T0,
        ))  # fmt: skip
        if len(batch) >= 2000:
            ledger.submit_many(batch)
            batch = []
    if batch:
        ledger.submit_many(batch)
    return ledger, pseudonyms, clinician, reader


def _median_ns(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


@click.command()
@click.option("--sessions", default="100,10000", show_default=True)
@click.option("--queries", default=20_000, show_default=True)
def main(sessions: str, queries: int) -> None:
    at = T0 + timedelta(minutes=1)
    click.echo(f"{'sessions':>9} {'grant check µs':>15} {'session lookup µs':>18} {'ratio':>6}")
    for size in (int(part) for part in sessions.split(",")):
        with tempfile.TemporaryDirectory() as scratch:
            ledger, pseudonyms, clinician, reader = _build(
                f"sqlite:///{Path(scratch) / 'ledger.db'}", size
            )
            with ledger:
                checks, lookups = [], []
                for n in range(queries):
                    pseudonym = pseudonyms[n % len(pseudonyms)]
                    start = time.perf_counter_ns()
                    allowed = ledger.check(reader.id, "read", pseudonym, "lab-results", at)
                    checks.append(time.perf_counter_ns() - start)
                    start = time.perf_counter_ns()
                    found = live_session(ledger, clinician.id, "body", pseudonym, "lab-results", at)
                    lookups.append(time.perf_counter_ns() - start)
                    if not allowed or found is None:
                        raise click.ClickException("a decision the benchmark expects failed")
                grant, session = _median_ns(checks), _median_ns(lookups)
                click.echo(f"{size:>9,} {grant:>15.1f} {session:>18.1f} {session / grant:>6.1f}")


if __name__ == "__main__":
    main()
