"""`ehrgate import-aria`: upload an ARIA-style export (folder tree or manifest) resumably.

Exit codes: 0 when every file was uploaded or had been already; 3 when uploads failed
because the gateway was unavailable; 1 when uploads failed otherwise (denied, refused);
2 when files were skipped (and nothing failed) or the inputs are unusable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import click

from ehrgate.commands._session import session, table
from ehrgate.commands._shared import emit, file_option, json_option
from ehrgate.commands.bridge import linked_mrns
from ehrgate.errors import EXIT_DENIED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, UsageError
from ehrgate.importer import (
    CategoryTable,
    ImportSummary,
    Journal,
    Outcome,
    load_mrn_map,
    run_import,
    scan_folder,
    scan_manifest,
)
from ehrgate.importer.run import Status
from ehrgate.importer.source import Candidate, Skip

STATE_FILE = ".ehrgate-import.sqlite"


def _state_files(state: Path) -> frozenset[Path]:
    """The journal and SQLite's companions, which must not be imported themselves."""
    return frozenset(state.with_name(state.name + suffix) for suffix in ("", "-wal", "-shm"))


class _Bar(Protocol):
    def update(self, n_steps: int) -> None: ...


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[_Bar | None]:
    if not enabled or total == 0:
        yield None
        return
    with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
        yield bar


def exit_code(summary: ImportSummary, unavailable: int) -> int:
    if summary.count(Status.FAILED):
        return EXIT_UNAVAILABLE if unavailable else EXIT_DENIED
    if summary.count(Status.SKIPPED):
        return EXIT_USAGE
    return EXIT_OK


def _summary_text(summary: ImportSummary) -> str:
    totals = summary.totals()
    lines = [table(("status", "files"), [(status, count) for status, count in totals.items()])]
    problems = [o for o in summary.outcomes if o.status in (Status.SKIPPED, Status.FAILED)]
    if problems:
        lines.append("")
        lines.append(
            table(
                ("file", "status", "reason"),
                [(o.relpath, o.status.value, o.detail) for o in sorted(problems, key=_order)],
            )
        )
    return "\n".join(lines)


def _order(outcome: Outcome) -> tuple[str, str]:
    return (outcome.status.value, outcome.relpath)


@click.command(name="import-aria")
@click.argument(
    "export_dir", metavar="EXPORT_DIR", type=click.Path(file_okay=False, path_type=Path)
)
@file_option("--mapping", metavar="MRN_MAP.csv", help_text="CSV with columns mrn,pseudonym.")
@click.option(
    "--links",
    "use_links",
    is_flag=True,
    help="Map MRNs with the bridge's patient links (EHRGATE_BRIDGE_*) instead of --mapping.",
)
@file_option(
    "--manifest",
    metavar="CSV",
    help_text="CSV with mrn,category,path[,document_date] (paths relative to EXPORT_DIR).",
)
@file_option(
    "--categories",
    "categories_file",
    metavar="CSV",
    help_text="CSV folder,category adding to (or overriding) the default folder names.",
)
@file_option(
    "--state",
    metavar="FILE",
    help_text=f"Resumable state file [default: EXPORT_DIR/{STATE_FILE}].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Uploads in flight at once.",
)
@json_option
@click.pass_context
def import_aria(
    ctx: click.Context,
    export_dir: Path,
    mapping: Path | None,
    use_links: bool,
    manifest: Path | None,
    categories_file: Path | None,
    state: Path | None,
    concurrency: int,
    as_json: bool,
) -> None:
    """Upload the PDFs of an ARIA-style export, resumably, as a hospital system.

    MRNs map to pseudonyms by a --mapping CSV or by the patient links a hospital bridge
    holds (--links), each created from a statement the patient signed.
    EXPORT_DIR holds <MRN>/<category folder>/<file>.pdf (or the files a --manifest names).
    Re-runs upload nothing twice; a killed run resumes where it stopped. Unknown MRNs and
    categories, non-PDFs, empty and unreadable files are skipped with their reason.
    Exit 0 only if every file is imported.
    """
    from ehrgate.importer.upload import GatewayUploader

    if not export_dir.is_dir():
        raise UsageError(f"{export_dir}: no such export folder")
    state_file = state if state is not None else export_dir / STATE_FILE
    if (mapping is None) == (not use_links):
        raise UsageError(
            "say how MRNs map to patients: --mapping MRN_MAP.csv, or --links for the bridge's"
            " patient links (one of the two)"
        )
    mrn_map = load_mrn_map(mapping) if mapping is not None else linked_mrns()
    categories = CategoryTable.from_csv(categories_file) if categories_file else CategoryTable()
    items: list[Candidate | Skip] = list(
        scan_manifest(manifest, mrn_map, categories, root=export_dir)
        if manifest is not None
        else scan_folder(export_dir, mrn_map, categories, ignore=_state_files(state_file.resolve()))
    )
    client = session(ctx).client(max_connections=concurrency)
    client.whoami()  # log in now: a wrong key or a gateway that is down stops here
    uploader = GatewayUploader(client)
    with (
        Journal(state_file) as journal,
        _progress(len(items), sys.stderr.isatty() and not as_json) as bar,
    ):
        summary = run_import(
            items,
            uploader,
            journal,
            concurrency=concurrency,
            on_outcome=(lambda _outcome: bar.update(1)) if bar is not None else None,
        )
    code = exit_code(summary, uploader.unavailable)
    emit(
        as_json,
        {
            "totals": summary.totals(),
            "ok": summary.ok,
            "state_file": str(state_file),
            "outcomes": [
                {
                    "file": outcome.relpath,
                    "status": outcome.status.value,
                    "detail": outcome.detail,
                    "record_id": outcome.record_id,
                }
                for outcome in sorted(summary.outcomes, key=_order)
            ],
        },
        lambda: _summary_text(summary),
    )
    ctx.exit(code)
