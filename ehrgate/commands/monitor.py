"""`ehrgate ledger monitor URL`: follow a remote gateway's log and alert on any conflict."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ehrgate.commands._session import session
from ehrgate.errors import EXIT_DENIED, EXIT_OK, NoQuorum, SplitView, Unavailable

if TYPE_CHECKING:
    from ehrgate.monitor import LogMonitor

DEFAULT_INTERVAL = 30.0


def _default_state_dir(url: str) -> Path:
    from ehrgate.trust import default_pins_path

    name = re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[-1]).strip("_")
    return default_pins_path().parent / "monitor" / name


def _alert(url: str, exc: Exception) -> dict[str, object]:
    evidence = getattr(exc, "evidence", None)
    return {
        "gateway": url,
        "ok": False,
        "problem": str(exc),
        "error": type(exc).__name__,
        "evidence": str(evidence) if evidence is not None else None,
    }


@click.command()
@click.argument("url", metavar="URL")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the mirror, the pins, the last checkpoint and any evidence are kept "
    "[default: ~/.config/ehrgate/monitor/<host>].",
)
@click.option("--once", is_flag=True, help="One round, then exit (0 ok, 1 alert).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between rounds.",
)
@click.option(
    "--rounds", type=click.IntRange(min=1), help="Stop after this many rounds (default: never)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per round on stdout.")
@click.pass_context
def monitor(
    ctx: click.Context,
    url: str,
    state_dir: Path | None,
    once: bool,
    interval: float,
    rounds: int | None,
    as_json: bool,
) -> None:
    """Follow the log of the gateway at URL: each round, check its checkpoint is consistent
    with the last one seen (and has the witness policy's quorum, given --witness-policy),
    fetch the new entries, verify them with the rules replayed, and report.

    Needs an auditor's or admin's key file (--as). Exits 1 at the first conflict or
    damage (a split view keeps both signed checkpoints under <state-dir>/evidence/); a
    gateway or witnesses that cannot answer are reported and tried again next round.
    """
    from ehrgate.client import Client
    from ehrgate.monitor import LogMonitor
    from ehrgate.trust import LedgerPins
    from ehrgate.witness_policy import load_policy

    current = session(ctx)
    directory = state_dir or _default_state_dir(url)
    directory.mkdir(parents=True, exist_ok=True)
    policy = load_policy(current.witness_policy) if current.witness_policy else None
    with Client(
        url,
        current.keys(),
        ledger_key=current.ledger_key,
        pins=LedgerPins(directory / "known_ledgers.json"),
        witness_policy=policy,
        timeout=current.timeout,
    ) as client:
        follower = LogMonitor(client, directory)
        done = 0
        while True:
            status = _one_round(follower, url, as_json, final=once)
            done += 1
            if status != EXIT_OK or once or (rounds is not None and done >= rounds):
                ctx.exit(status)
            time.sleep(interval)


def _one_round(follower: LogMonitor, url: str, as_json: bool, *, final: bool) -> int:
    """Run and print one round; its exit status (non-zero ends the monitor)."""
    try:
        report = follower.round()
    except SplitView as exc:
        _print(as_json, _alert(url, exc), f"ALERT split view: {exc}")
        return EXIT_DENIED
    except (NoQuorum, Unavailable) as exc:
        _print(as_json, _alert(url, exc), f"warning {url}: {exc}")
        return exc.exit_code if final else EXIT_OK
    _print(as_json, report.to_json(), report.summary())
    return EXIT_OK if report.ok else EXIT_DENIED


def _print(as_json: bool, document: dict[str, object], text: str) -> None:
    click.echo(json.dumps(document, sort_keys=True) if as_json else text)
