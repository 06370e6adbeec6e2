"""`ehrgate gc`: remove orphan bodies, stored in the blob stores but referenced by no record.

An upload stores the sealed body first and commits its `record` second, so a crash or a
refused commit in between leaves an orphan. This command has the gateway (`gateway.gc`) read
from the ledger database which blobs are referenced (every record's body and capsule, and
every capsule the ledger still keeps) and remove the other blobs that are older than the
grace period.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from ehrgate.errors import EXIT_DENIED, EXIT_OK, EXIT_UNAVAILABLE

if TYPE_CHECKING:
    from gateway.gc import GcReport

EXIT_SOME_FAILED = EXIT_DENIED
"""Some blob could not be deleted (the rest were): 1, as for any refusal."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_grace(text: str) -> timedelta:
    """`90`, `30s`, `15m`, `12h`, `1d` as a timedelta."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise click.BadParameter(
            f"{text!r} is not a duration; write seconds or a number with s, m, h or d (e.g. 1d)",
            param_hint="--grace",
        )
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


def _summary(report: GcReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    return (
        f"examined {report.examined} blobs: {report.kept_referenced} referenced, "
        f"{report.kept_young} younger than the grace period, {verb} {len(report.deleted)}, "
        f"{len(report.failed)} failed"
    )


@click.command()
@click.option("--db", "db", metavar="URL", required=True, help="SQLAlchemy URL of the ledger.")
@click.option(
    "--store",
    "stores",
    metavar="URL",
    multiple=True,
    required=True,
    help="A blob store URL; repeat it (or separate URLs by commas) for every store.",
)
@click.option(
    "--grace",
    default="1d",
    show_default=True,
    help="Keep unreferenced blobs written more recently than this (s, m, h, d). It must "
    "exceed the longest time between an upload and its commit.",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc(db: str, stores: tuple[str, ...], grace: str, dry_run: bool, as_json: bool) -> None:
    """Delete orphan blobs: in the stores, but referenced by no record on the ledger.

    Exits 0 when done, 1 if some blob could not be deleted, 3 if a store or the database
    cannot be reached.
    """
    from gateway.gc import GcFailed, GcMisconfigured, collect_orphans

    period = parse_grace(grace)
    urls = [part for url in stores for part in url.replace(",", " ").split() if part]
    try:
        report = collect_orphans(db, urls, grace=period, dry_run=dry_run)
    except GcMisconfigured as exc:
        raise click.UsageError(str(exc)) from exc
    except GcFailed as exc:
        click.echo(f"ehrgate gc: {exc}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "examined": report.examined,
                    "kept_referenced": report.kept_referenced,
                    "kept_young": report.kept_young,
                    "deleted": list(report.deleted),
                    "failed": [{"locator": loc, "reason": why} for loc, why in report.failed],
                    "dry_run": report.dry_run,
                },
                indent=2,
            )
        )
    else:
        click.echo(_summary(report))
        for locator in report.deleted:
            click.echo(f"  {'would delete' if dry_run else 'deleted'} {locator}")
        for locator, reason in report.failed:
            click.echo(f"  failed {locator}: {reason}", err=True)
    sys.exit(EXIT_SOME_FAILED if report.failed else EXIT_OK)
