"""What every command shares: exit codes, errors, options, output, files written whole.

Commands raise the client's exceptions (`ehrgate.errors`, and the importer's, which derive
from them); `EhrgateGroup` turns each into one line on stderr (and a JSON object on stdout
under --json) and its exit code. Exit codes: 0 ok, 1 denied or verification failed (a
changed or foreign file, a wrong passphrase, a damaged ledger), 2 usage error (bad options,
missing or malformed input files), 3 gateway or store unavailable.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import click

from ehrgate.errors import EXIT_DENIED, EhrgateError, UsageError
from ehrgate.files import publish

F = TypeVar("F", bound=Callable[..., Any])

# `ledger verify` and `ledger replay` found a damaged entry, block or state row: exit 1,
# as for any verification that fails.
EXIT_DAMAGED = EXIT_DENIED

_JSON_FLAG = "ehrgate.json"


# --- options ------------------------------------------------------------------------------


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_root().meta[_JSON_FLAG] = True
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="Print machine-readable JSON instead of text.",
)
force_option = click.option("--force", is_flag=True, help="Replace the output if it exists.")


def passphrase_option(
    help_text: str = "Environment variable holding the key file's passphrase "
    "(instead of the global --passphrase-env).",
) -> Callable[[F], F]:
    """A command's own `--passphrase-env VAR`, which wins over the global one."""
    return click.option("--passphrase-env", "passphrase_env", metavar="VAR", help=help_text)


def file_option(*names: str, metavar: str, help_text: str, **extra: Any) -> Callable[[F], F]:
    """An option naming a file (not a folder), as a Path."""
    kind = click.Path(dir_okay=False, path_type=Path)
    return click.option(*names, type=kind, metavar=metavar, help=help_text, **extra)


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.find_root().meta.get(_JSON_FLAG))


# --- output and errors --------------------------------------------------------------------


def emit(as_json: bool, result: Any, text: str | Callable[[], str]) -> None:
    """Print *result* as JSON, or *text* for people."""
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        click.echo(text() if callable(text) else text)


def report_error(ctx: click.Context, error: EhrgateError) -> None:
    """Print an error (also as JSON on stdout under --json) and exit with its code."""
    if wants_json(ctx):
        click.echo(json.dumps(error.to_json(), indent=2, sort_keys=True))
    hint = f" (request id {error.request_id})" if error.request_id else ""
    click.echo(f"ehrgate: {error.message}{hint}", err=True)
    ctx.exit(error.exit_code)


class EhrgateGroup(click.Group):
    """The one place where a command's EhrgateError becomes a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EhrgateError as exc:
            report_error(ctx, exc)
        except click.UsageError as exc:
            # click's own usage errors already exit 2; keep that, but let --json see it
            if wants_json(ctx):
                click.echo(json.dumps({"error": "UsageError", "message": exc.format_message()}))
            raise
        return None


# --- files written whole ------------------------------------------------------------------


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} already exists (use --force to replace it)")


@contextlib.contextmanager
def output_file(path: Path, *, force: bool, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A file that appears at *path* only if the block completes; otherwise nothing is left."""
    refuse_existing(path, force)
    temporary = path.with_name(f".{path.name}.{os.urandom(6).hex()}.partial")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise UsageError(f"cannot write next to {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        publish(temporary, path, replace=force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
