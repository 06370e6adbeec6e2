"""What the gateway commands share: the global options, the key file, the SDK client,
times, and plain-text tables.

Global options (before the command): `--gateway URL` (`EHRGATE_URL`), `--as KEYFILE`
(`EHRGATE_IDENTITY`), `--passphrase-env VAR` (the variable holding the key file's
passphrase, `EHRGATE_PASSPHRASE` unless said otherwise; see `_keyfiles`), `--ledger-key
BASE64` (`EHRGATE_LEDGER_KEY`), `--known-ledgers FILE` (`EHRGATE_KNOWN_LEDGERS`) and
`--witness-policy FILE` (`EHRGATE_WITNESS_POLICY`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ehrgate.commands._keyfiles import Passphrase
from ehrgate.errors import UsageError
from envelope import IdentityKeys, PatientKeys

if TYPE_CHECKING:
    from ehrgate.client import Client


@dataclass
class Session:
    """The global options, and the client built from them on first use."""

    gateway: str | None
    identity_file: str | None
    passphrase: Passphrase
    ledger_key: str | None
    known_ledgers: Path | None
    timeout: float
    witness_policy: Path | None = None
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
            self._keys = self.passphrase.load(self.identity_file)
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
        from ehrgate.witness_policy import load_policy

        keys = None if anonymous else self.keys()
        client = Client(
            self.gateway_url(),
            keys,
            ledger_key=self.ledger_key,
            pins=LedgerPins(self.known_ledgers or default_pins_path()),
            witness_policy=load_policy(self.witness_policy) if self.witness_policy else None,
            timeout=self.timeout,
            max_connections=max_connections,
        )
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()


own_patient_option = click.option(
    "--patient", "pseudonym", metavar="PSEUDONYM", help="Default: your own."
)


def session(ctx: click.Context) -> Session:
    found = ctx.find_object(Session)
    if found is None:
        raise UsageError("the gateway commands need the `ehrgate` group's options")
    return found


def passphrase(ctx: click.Context, command_variable: str | None = None) -> Passphrase:
    """Where the key file's passphrase is: the variable the command's own --passphrase-env
    names (*command_variable*), else the global option's (see `_keyfiles`)."""
    if command_variable is not None:
        return Passphrase(command_variable, named=True)
    found = ctx.find_object(Session)
    return found.passphrase if found is not None else Passphrase()


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
