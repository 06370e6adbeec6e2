"""`ehrgate serve`: run the gateway (embedded SQLite + local blobs unless configured)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from ehrgate.errors import Unavailable


@click.command()
@click.option("--host", default=None, help="Address to bind [default: 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port [default: 8000].")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the embedded ledger, blobs and keys [default: ./.ehrgate].",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Gateway processes sharing the port (more than one needs a PostgreSQL ledger).",
)
def serve(host: str | None, port: int | None, data_dir: Path | None, workers: int) -> None:
    """Run the ehrgate gateway; EHRGATE_* variables configure everything else."""
    import uvicorn
    from pydantic import ValidationError

    from gateway import Settings, create_app
    from gateway.bootstrap import ensure_first_start

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        settings = Settings(**overrides)
    except (ValidationError, ValueError) as exc:
        raise click.UsageError(f"invalid settings: {exc}") from exc

    if workers > 1 and not settings.shared_auth_state:
        raise click.UsageError(
            "--workers above 1 needs the ledger on PostgreSQL (EHRGATE_DATABASE_URL) with "
            "authentication state in the database (EHRGATE_AUTH_STATE unset or 'database'): "
            "on SQLite one process writes at a time, and tokens kept in memory are unknown "
            "to the other workers"
        )
    try:
        first = ensure_first_start(settings)
    except Exception as exc:  # unreadable key file, unreachable database: say which
        raise Unavailable(f"cannot open the ledger: {exc}") from exc
    if first.admin_key_file is not None:
        click.echo(f"created the ledger key {settings.resolved_ledger_key_file}")
        click.echo(f"first admin key file (keep it safe): {first.admin_key_file}")
    click.echo(f"ehrgate gateway on http://{settings.host}:{settings.port}")
    # The client address feeds the rate limits: trust X-Forwarded-For only from the proxies
    # named in the settings, never from anyone who sends the header.
    proxies = settings.trusted_proxies
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # C parsing and a libuv event loop: the gateway moves every body byte through
        # Python twice, and the pure-Python h11 parser and asyncio loop cost it about a
        # third of its upload and read throughput (docs/gateway.md, Benchmarks).
        "http": "httptools",
        "loop": "asyncio" if sys.platform == "win32" else "uvloop",
        "log_level": settings.log_level,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": ",".join(proxies) if proxies else None,
        # On SIGTERM: stop accepting, let requests in flight (streams included) finish for
        # up to this long, then close the ledger, which commits what is queued.
        "timeout_graceful_shutdown": settings.shutdown_timeout.total_seconds(),
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Each worker process builds its application from the environment: pass the options
    # given on the command line there too.
    for name, value in overrides.items():
        os.environ[f"EHRGATE_{name.upper()}"] = str(value)
    uvicorn.run("gateway.app:create_app", factory=True, workers=workers, **options)
