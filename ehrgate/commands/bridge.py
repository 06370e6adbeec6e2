"""`ehrgate bridge`: the hospital bridge (serve), its key store and its patient links.

Settings come from `EHRGATE_BRIDGE_*` environment variables (`bridge.settings`).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ehrgate.commands._keyfiles import Passphrase
from ehrgate.commands._shared import emit, json_option
from ehrgate.errors import UsageError

if TYPE_CHECKING:
    from bridge.service import Bridge
    from bridge.settings import BridgeSettings
    from ehrgate.client import Client


def _settings() -> BridgeSettings:
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bridge.settings import BridgeSettings

    try:
        return BridgeSettings()  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise UsageError(f"bridge settings: {problems}") from exc
    except SettingsError as exc:
        raise UsageError(f"bridge settings: {exc} (lists and tables are JSON)") from exc


def linked_mrns() -> dict[str, str]:
    """MRN → pseudonym from the bridge's patient links (its settings from EHRGATE_BRIDGE_*).

    Every link in the store was verified against the patient's signed statement when it was
    added; revoked links are left out.
    """
    from bridge.links import PatientLinks
    from bridge.store import BridgeStore

    settings = _settings()
    if not settings.store_path.is_file():
        raise UsageError(
            f"no bridge store at {settings.store_path} (EHRGATE_BRIDGE_DATA_DIR): link patients"
            " with `ehrgate bridge link add STATEMENT`, or give --mapping"
        )
    store = BridgeStore(settings.store_path)
    try:
        found = PatientLinks(store, settings.hospital_id).mrn_map()
    finally:
        store.close()
    if not found:
        raise UsageError(
            f"the bridge at {settings.data_dir} links no patient yet: add their signed link"
            " statements with `ehrgate bridge link add STATEMENT`"
        )
    return found


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """`EHRGATE_BRIDGE_SMART_CLIENTS (engine.jwks): message` for a nested setting."""
    name = f"EHRGATE_BRIDGE_{str(loc[0]).upper()}" if loc else "EHRGATE_BRIDGE_*"
    inner = ".".join(str(part) for part in loc[1:])
    return f"{name}{f' ({inner})' if inner else ''}: {message}"


def _bridge_error(exc: Exception) -> UsageError:
    return UsageError(str(exc))


def _check_bindable(host: str, port: int, what: str, setting: str) -> None:
    """Refuse (exit 2) before serving when an address the bridge needs is taken.

    uvicorn would otherwise start, fail in its lifespan and exit with status 3 and a
    traceback; the probe names the port and the setting that moves it instead. A port of 0
    (any free port) needs no probe.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"the {what} cannot listen on {host}:{port} ({exc.strerror or exc}): stop what"
                f" holds that port or choose another with {setting}"
            ) from exc


@click.group()
def bridge() -> None:
    """The hospital bridge: IHE MHD for the hospital's systems, a client of the gateway."""


@bridge.command()
@click.option("--host", help="Address to bind [default: EHRGATE_BRIDGE_HOST or 127.0.0.1].")
@click.option("--port", type=int, help="Port [default: EHRGATE_BRIDGE_PORT or 8080].")
def serve(host: str | None, port: int | None) -> None:
    """Serve the bridge (FHIR under /fhir, SMART token endpoint, HL7 v2 MLLP) with uvicorn."""
    import uvicorn

    from bridge.app import create_bridge_app
    from bridge.errors import BridgeError

    settings = _settings()
    try:
        app = create_bridge_app(settings)
    except (BridgeError, OSError) as exc:
        raise _bridge_error(exc) from exc
    http_host, http_port = host or settings.host, port or settings.port
    _check_bindable(http_host, http_port, "FHIR server", "--port or EHRGATE_BRIDGE_PORT")
    if settings.mllp_port is not None:
        _check_bindable(
            settings.mllp_host, settings.mllp_port, "HL7 v2 listener", "EHRGATE_BRIDGE_MLLP_PORT"
        )
    uvicorn.run(
        app,
        host=http_host,
        port=http_port,
        log_level=settings.log_level,
    )


@bridge.group()
def keys() -> None:
    """The bridge's key store of identities (encrypted with its passphrase)."""


@keys.command("add")
@click.argument("keyfile", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--passphrase-env", "variable", metavar="VAR", help="Variable holding KEYFILE's passphrase."
)
def keys_add(keyfile: Path, variable: str | None) -> None:
    """Put an identity's key file into the key store, encrypted with its passphrase."""
    from bridge.errors import BridgeError
    from bridge.keystore import KeyStore
    from envelope import IdentityKeys

    settings = _settings()
    source = Passphrase(variable, named=True) if variable else Passphrase()
    found = source.load(keyfile)
    if not isinstance(found, IdentityKeys):
        raise UsageError(f"{keyfile} is a patient's key file; the bridge holds identities only")
    try:
        path = KeyStore(settings.keys_dir, settings.read_passphrase()).add(found)
    except BridgeError as exc:
        raise _bridge_error(exc) from exc
    click.echo(f"added {found.id} ({found.role}) to the key store at {path}")


@keys.command("list")
def keys_list() -> None:
    """The identities in the key store."""
    from bridge.keystore import KeyStore

    settings = _settings()
    for identity_id in KeyStore(settings.keys_dir, "unused").ids():
        click.echo(identity_id)


@bridge.group()
def link() -> None:
    """Patient links: MRN ↔ pseudonym, from statements the patients signed."""


def _links_and_client() -> tuple[Bridge, Client]:
    from bridge.service import Bridge

    settings = _settings()
    found = Bridge(settings)
    return found, found.identities.client(settings.system_identity)


@link.command("add")
@click.argument("statement", type=click.Path(dir_okay=False, path_type=Path))
def link_add(statement: Path) -> None:
    """Verify a patient's signed link statement and link its MRN."""
    from bridge.errors import BridgeError

    try:
        document = json.loads(statement.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{statement} is not a readable JSON link statement") from exc
    running, client = _links_and_client()
    try:
        added = running.links.add(document, client)
    except BridgeError as exc:
        raise _bridge_error(exc) from exc
    finally:
        running.close()
    click.echo(f"linked MRN {added.mrn} to {added.pseudonym}")


@link.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Also revoked links.")
@json_option
def link_list(include_revoked: bool, as_json: bool) -> None:
    """The links: MRN, pseudonym, when signed and linked, revoked."""
    from bridge.store import BridgeStore

    settings = _settings()
    store = BridgeStore(settings.data_dir / "bridge.sqlite3")
    try:
        links = store.links(include_revoked=include_revoked)
    finally:
        store.close()
    rows = [
        {
            "mrn": x.mrn,
            "pseudonym": x.pseudonym,
            "signed_at": x.signed_at,
            "linked_at": x.linked_at,
            "revoked_at": x.revoked_at,
        }
        for x in links
    ]
    text = "\n".join(
        f"{r['mrn']}\t{r['pseudonym']}\t{r['signed_at']}\t{r['revoked_at'] or ''}" for r in rows
    )
    emit(as_json, {"links": rows}, text or "no links")


@link.command("revoke")
@click.argument("mrn")
def link_revoke(mrn: str) -> None:
    """Unlink an MRN: the bridge publishes nothing more for it."""
    from bridge.errors import BridgeError
    from bridge.links import PatientLinks
    from bridge.store import BridgeStore

    settings = _settings()
    store = BridgeStore(settings.data_dir / "bridge.sqlite3")
    try:
        PatientLinks(store, settings.hospital_id).revoke(mrn)
    except BridgeError as exc:
        raise _bridge_error(exc) from exc
    finally:
        store.close()
    click.echo(f"unlinked MRN {mrn}")
