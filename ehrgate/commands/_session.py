"""What the gateway commands share: the global options, the key file, the SDK client,
error reporting with the documented exit codes, times, and plain-text tables.

Global options (before the command): `--gateway URL` (`EHRGATE_URL`), `--as KEYFILE`
(`EHRGATE_IDENTITY`), `--passphrase-env VAR` (the variable holding the key file's
passphrase, `EHRGATE_PASSPHRASE` unless said otherwise), `--ledger-key BASE64`
(`EHRGATE_LEDGER_KEY`) and `--known-ledgers FILE` (`EHRGATE_KNOWN_LEDGERS`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ehrgate.errors import EXIT_DENIED, EhrgateError, UsageError
from envelope import IdentityKeys, InvalidKeyFile, PatientKeys, WrongPassphrase, load_key_file

if TYPE_CHECKING:
    from ehrgate.client import Client

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_PASSPHRASE_VARIABLE = "EHRGATE_PASSPHRASE"
_JSON_FLAG = "ehrgate.json"


class KeyFileRefused(EhrgateError):
    """The key file's passphrase is wrong: exit 1, as for any failed verification."""

    exit_code = EXIT_DENIED


@dataclass
class Session:
    """The global options, and the client built from them on first use."""

    gateway: str | None
    identity_file: str | None
    passphrase_variable: str
    ledger_key: str | None
    known_ledgers: Path | None
    timeout: float
    _keys: IdentityKeys | PatientKeys | None = None
    _clients: list[Client] = field(default_factory=list)

    def gateway_url(self) -> str:
        if not self.gateway:
            raise UsageError("give the gateway with --gateway URL or EHRGATE_URL")
        return self.gateway

    def keys(self) -> IdentityKeys | PatientKeys:
        if self._keys is None:
            if not self.identity_file:
                raise UsageError("give your key file with --as KEYFILE or EHRGATE_IDENTITY")
            self._keys = load_keys(self.identity_file, self.passphrase_variable)
        return self._keys

    def patient_keys(self) -> PatientKeys:
        keys = self.keys()
        if not isinstance(keys, PatientKeys):
            raise UsageError(
                f"{self.identity_file} is the key file of {keys.id} ({keys.role}); "
                "this command needs a patient's key file"
            )
        return keys

    def client(self, *, anonymous: bool = False, max_connections: int = 32) -> Client:
        from ehrgate.client import Client
        from ehrgate.trust import LedgerPins, default_pins_path

        keys = None if anonymous else self.keys()
        client = Client(
            self.gateway_url(),
            keys,
            ledger_key=self.ledger_key,
            pins=LedgerPins(self.known_ledgers or default_pins_path()),
            timeout=self.timeout,
            max_connections=max_connections,
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


def load_keys(path: str, passphrase_variable: str) -> IdentityKeys | PatientKeys:
    passphrase = os.environ.get(passphrase_variable) or None
    try:
        return load_key_file(path, passphrase)
    except WrongPassphrase as exc:
        raise KeyFileRefused(f"{exc} (from ${passphrase_variable})") from exc
    except InvalidKeyFile as exc:
        message = str(exc)
        if "protected by a passphrase" in message:
            message += f": put it in ${passphrase_variable} (or name another variable with "
            message += "--passphrase-env VAR)"
        raise UsageError(message) from exc


def session(ctx: click.Context) -> Session:
    found = ctx.find_object(Session)
    if found is None:
        raise UsageError("the gateway commands need the `ehrgate` group's options")
    return found


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


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.find_root().meta.get(_JSON_FLAG))


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
    """A click group whose commands' EhrgateErrors become messages and exit codes."""

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


# --- times ----------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """`now`, a relative `+30s` / `+15m` / `+2h` / `+7d` / `+1w`, or ISO 8601 (a date alone
    is midnight UTC; a time without zone is UTC)."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return now + timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(
            f"{text!r} is not a time: use now, +30s, +15m, +2h, +7d, or ISO 8601 such as "
            "2030-01-31 or 2030-01-31T18:00:00+01:00"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def split_list(text: str, what: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise UsageError(f"{what} must name at least one value")
    return values


# --- plain-text tables --------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(cell) if cell is not None else "-" for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def short(value: str, keep: int = 12) -> str:
    return value if len(value) <= keep + 1 else value[:keep] + "…"


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
