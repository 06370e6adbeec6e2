"""Sizes of scoped record keys: a key share per grant length, and what publishing costs.

    ./dev python -m bench.scoped_keys [--categories 4]

For a grant of every category over 1, 12 and 60 months: the sealed share's bytes and its
`key_share` transaction's canonical JSON bytes on the ledger; for publishing the current
month and 24 more: the `publish_keys` transactions' bytes per patient. Sizes do not vary
between runs (HPKE's encapsulation is random, its length is not).
"""

from __future__ import annotations

import click

from envelope import PatientKeys, seal_scoped_share
from envelope.scoped import months, next_period, scoped_private_key
from ledger.categories import DEFAULT_CATEGORIES
from ledger.wire import builders
from ledger.wire.encoding import canonical
from ledger.wire.scoped import MAX_KEYS_PER_TX


@click.command()
@click.option("--categories", type=click.IntRange(1, len(DEFAULT_CATEGORIES)), default=4)
def main(categories: int) -> None:
    patient = PatientKeys.generate({"name": "Bench Patient"})
    doctor = PatientKeys.generate({"name": "Bench Doctor"}).identity
    names = [c.name for c in DEFAULT_CATEGORIES][:categories]
    click.echo(f"scoped key share, {categories} categories")
    click.echo(f"{'months':>6} {'seeds':>6} {'share B':>9} {'key_share tx B':>15}")
    for count in (1, 12, 60):
        scope = [
            (c, m) for c in names for m in months("2026-01", next_period("2026-01", count - 1))
        ]
        sealed = seal_scoped_share(
            patient.patient_key,
            pseudonym=patient.pseudonym,
            grantee_id=doctor.id,
            grantee_key=doctor.public().encryption_key,
            scope=scope,
        )
        tx = builders.key_share(
            patient.identity,
            pseudonym=patient.pseudonym,
            grantee=doctor.id,
            sealed_key=sealed,
            scope=scope,
        )
        size = len(canonical(tx.to_json()))
        click.echo(f"{count:>6} {len(scope):>6} {len(sealed):>9,} {size:>15,}")
    keys = [
        (c, p, scoped_private_key(patient.patient_key, c, p).public_key().to_bytes())
        for c in names
        for p in months("2026-01", next_period("2026-01", 24))
    ]
    total = 0
    for at in range(0, len(keys), MAX_KEYS_PER_TX):
        tx = builders.publish_keys(
            patient.identity, pseudonym=patient.pseudonym, keys=keys[at : at + MAX_KEYS_PER_TX]
        )
        total += len(canonical(tx.to_json()))
    click.echo(
        f"publishing 25 months x {categories} categories ({len(keys)} keys): {total:,} bytes "
        f"on the ledger, {total / len(keys):,.0f} per key, {total / 25 * 12 / categories:,.0f} "
        "per category and year"
    )


if __name__ == "__main__":
    main()
