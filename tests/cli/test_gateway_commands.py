"""The gateway commands as a user runs them: `python -m ehrgate ...` in a subprocess against
a live gateway on loopback; each command's success path, its --json output, and its exit
codes for bad input (2), refusals (1) and an unavailable gateway (3)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from ehrgate.cli import cli
from ehrgate.embedded import free_port
from envelope import IdentityKeys, b64encode, write_key_file
from ledger.wire import builders
from tests.cli.live_cli import PDF, Run, fails, upload_one
from tests.client.live import Cast
from tests.gateway.helpers import login

# --- help ------------------------------------------------------------------------------


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help() -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    for path in _commands(cli):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output
        assert len(result.output.splitlines()) > 3, path


def test_help_names_the_exit_codes(ehrgate: Run) -> None:
    result = ehrgate("--help")
    assert result.returncode == 0
    assert "3 gateway or store" in result.stdout.replace("\n", " ").replace("  ", " ")


# --- identities ----------------------------------------------------------------------------


def test_enroll_and_suspend(ehrgate: Run, tmp_path: Path) -> None:
    key_file = tmp_path / "nurse.key"
    made = ehrgate(
        "keys", "identity", "--id", "nurse-joy", "--role", "clinician", "--out", key_file
    )
    assert made.returncode == 0, made.stderr
    public = tmp_path / "nurse.pub"
    public.write_text(ehrgate("keys", "public", key_file).stdout)

    enrolled = ehrgate.json(
        "enroll", "--id", "nurse-joy", "--role", "clinician", public, who="admin"
    )
    assert enrolled["id"] == "nurse-joy"
    assert enrolled["receipt"]["index"] > 0
    me = ehrgate("--as", key_file, "whoami")
    assert me.returncode == 0, me.stderr
    assert "nurse-joy (clinician)" in me.stdout

    suspended = ehrgate("suspend", "nurse-joy", "--reason", "left", who="admin")
    assert suspended.returncode == 0, suspended.stderr
    assert "suspended nurse-joy" in suspended.stdout
    fails(ehrgate("--as", key_file, "whoami", "--json"), 1, "suspended")


def test_enroll_checks_the_public_file(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    public = tmp_path / "doctor.pub"
    public.write_text(
        json.dumps({"kind": "ehrgate-identity-public", **cast.doctor.public().to_json()})
    )
    fails(ehrgate("enroll", "--id", "someone-else", public, who="admin"), 2, "not 'someone-else'")
    fails(ehrgate("enroll", tmp_path / "missing.pub", who="admin"), 2, "no public key file")
    fails(ehrgate("enroll", public, who="admin"), 2, "already")  # dr-grey is enrolled


def test_only_an_admin_enrolls(ehrgate: Run, tmp_path: Path) -> None:
    public = tmp_path / "x.pub"
    public.write_text(
        json.dumps(
            {
                "kind": "ehrgate-identity-public",
                **IdentityKeys.generate("x", "system").public().to_json(),
            }
        )
    )
    fails(ehrgate("enroll", public, who="doctor"), 1, "")


# --- patients and consent ------------------------------------------------------------------


def test_patient_register(ehrgate: Run, tmp_path: Path) -> None:
    uii = tmp_path / "uii.json"
    uii.write_text(json.dumps({"name": "Jo Bloggs", "birth_date": "1980-02-02"}))
    key_file = tmp_path / "jo.key"
    pseudonym = ehrgate("keys", "patient", "--uii", uii, "--out", key_file).stdout.strip()
    registered = ehrgate.json("--as", key_file, "patient", "register")
    assert registered["patient"]["pseudonym"] == pseudonym
    fails(ehrgate("--as", key_file, "patient", "register"), 2, "already")
    shown = ehrgate.json("patient", "show", pseudonym, who="doctor")
    assert shown["pseudonym"] == pseudonym


def test_patient_register_needs_a_patient_key(ehrgate: Run) -> None:
    fails(ehrgate("patient", "register", who="doctor"), 2, "needs a patient's key file")


def test_grant_permissions_and_revoke(ehrgate: Run, cast: Cast) -> None:
    granted = ehrgate.json(
        "grant",
        "--to",
        cast.auditor.id,
        "--rights",
        "read",
        "--categories",
        "lab-results,radiation-dose",
        "--until",
        "+2h",
        who="patient",
    )
    permission = granted["permission"]
    assert permission["grantee"] == cast.auditor.id
    assert permission["categories"] == ["lab-results", "radiation-dose"]
    listed = ehrgate.json("permissions", who="patient")["permissions"]
    assert permission["permission_id"] in [p["permission_id"] for p in listed]
    text = ehrgate("permissions", who="patient")
    assert permission["permission_id"] in text.stdout
    revoked = ehrgate.json("revoke", permission["permission_id"], who="patient")
    assert revoked["permission"]["revoked"] is True
    fails(ehrgate("revoke", permission["permission_id"], who="patient"), 2, "already")


def test_grant_text_output_and_dates(ehrgate: Run, cast: Cast) -> None:
    result = ehrgate(
        "grant",
        "--to",
        cast.auditor.id,
        "--rights",
        "read",
        "--categories",
        "all",
        "--from",
        "2030-01-01",
        "--until",
        "2030-01-02T12:00:00+01:00",
        who="patient",
    )
    assert result.returncode == 0, result.stderr
    assert "2030-01-01T00:00:00.000000Z until 2030-01-02T11:00:00.000000Z" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--rights", "read,fly", "--categories", "all", "--until", "+1h"), "unknown right"),
        (("--rights", "share", "--categories", "all", "--until", "+1h"), "--study"),
        (("--rights", "read", "--categories", "all", "--until", "soon"), "not a time"),
        (("--rights", "read", "--categories", "all", "--until", "2020-01-01"), "earlier"),
        (("--rights", "read", "--categories", "gossip", "--until", "+1h"), "unknown categor"),
    ],
)
def test_grant_refuses_bad_input(
    ehrgate: Run, cast: Cast, args: tuple[str, ...], message: str
) -> None:
    fails(ehrgate("grant", "--to", cast.doctor.id, *args, who="patient"), 2, message)


def test_a_share_grant_with_study(ehrgate: Run, cast: Cast) -> None:
    granted = ehrgate.json(
        "grant",
        "--to",
        cast.auditor.id,
        "--rights",
        "share",
        "--categories",
        "all",
        "--until",
        "+1d",
        "--study",
        "onco-2030",
        "--anonymise",
        who="patient",
    )
    assert granted["permission"]["study_id"] == "onco-2030"
    assert granted["permission"]["anonymise"] is True


def test_share_key(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    shared = ehrgate.json("share-key", "--to", cast.doctor.id, who="patient")
    assert shared["grantee"] == cast.doctor.id
    public = tmp_path / "doctor.pub"
    public.write_text(
        json.dumps({"kind": "ehrgate-identity-public", **cast.doctor.public().to_json()})
    )
    text = ehrgate("share-key", "--to", cast.doctor.id, "--to-key", public, who="patient")
    assert text.returncode == 0, text.stderr
    assert f"with {cast.doctor.id}" in text.stdout
    fails(ehrgate("share-key", "--to", "nobody", who="patient"), 2, "nobody")


def test_share_key_until_and_without_a_grant(ehrgate: Run, cast: Cast) -> None:
    shared = ehrgate.json("share-key", "--to", cast.doctor.id, "--until", "+1h", who="patient")
    assert shared["grantee"] == cast.doctor.id
    fails(ehrgate("share-key", "--to", cast.system.id, who="patient"), 2, "no read permission")


def test_publish_keys(ehrgate: Run, cast: Cast) -> None:
    done = ehrgate.json("patient", "publish-keys", "--from", "2003-04", "--months", "1",
                        who="patient")  # fmt: skip
    assert len(done["receipts"]) == 1
    again = ehrgate("patient", "publish-keys", "--from", "2003-04", "--months", "1",
                    who="patient")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already published" in again.stdout
    fails(ehrgate("patient", "publish-keys", "--from", "2003-13", who="patient"), 2, "YYYY-MM")
    fails(ehrgate("patient", "publish-keys", "--months", "500", who="patient"), 2, "500")


# --- records -------------------------------------------------------------------------------


def test_upload_records_and_fetch(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    first.write_bytes(PDF)
    second.write_bytes(PDF + b"%second\n")
    uploaded = ehrgate.json(
        "upload", "--patient", cast.pseudonym, "--category", "lab-results", first, second,
        who="system",
    )["uploaded"]  # fmt: skip
    assert [u["filename"] for u in uploaded] == ["a.pdf", "b.pdf"]
    ids = [u["record"]["record_id"] for u in uploaded]

    listed = ehrgate.json(
        "records", "--patient", cast.pseudonym, "--category", "lab-results", who="doctor"
    )
    assert set(ids) <= {r["record_id"] for r in listed["records"]}
    text = ehrgate("records", "--patient", cast.pseudonym, who="doctor")
    assert ids[0] in text.stdout

    fetched = ehrgate.json("fetch", ids[1], "-o", tmp_path / "out.pdf", who="doctor")
    assert (tmp_path / "out.pdf").read_bytes() == PDF + b"%second\n"
    assert fetched["signer_id"] == cast.system.id
    assert fetched["receipt"]["index"] == fetched["record"]["entry_index"]

    here = ehrgate("fetch", ids[0], who="doctor")  # default: the uploader's name, here
    assert here.returncode == 0, here.stderr
    assert (ehrgate.cwd / "a.pdf").read_bytes() == PDF
    assert "verified against ledger entry" in here.stdout
    fails(ehrgate("fetch", ids[0], who="doctor"), 2, "already exists")
    assert ehrgate("fetch", ids[0], "--force", who="doctor").returncode == 0


def test_upload_text_output_and_chosen_id(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    source = tmp_path / "r.pdf"
    source.write_bytes(PDF)
    record_id = "cli-" + os.urandom(6).hex()
    args = ["upload", "--patient", cast.pseudonym, "--category", "lab-results"]
    result = ehrgate(*args, "--record-id", record_id, source, who="system")
    assert result.returncode == 0, result.stderr
    assert f"record {record_id}" in result.stdout
    fails(ehrgate(*args, "--record-id", record_id, source, who="system"), 2, "already exists")
    fails(ehrgate(*args, "--record-id", "x", source, source, who="system"), 2, "exactly one FILE")
    fails(ehrgate(*args, tmp_path / "missing.pdf", who="system"), 2, "no such file")


def test_fetch_an_unknown_record(ehrgate: Run) -> None:
    result = ehrgate("fetch", "no-such-record", "--json", who="doctor")
    fails(result, 2, "no record")
    assert json.loads(result.stdout)["error"] == "NotFound"


def test_a_write_only_system_is_denied(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    record_id = upload_one(ehrgate, cast, tmp_path)
    fails(ehrgate("fetch", record_id, who="system"), 1, "")
    assert not (ehrgate.cwd / "report.pdf").exists()


def test_another_category_is_denied(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    record_id = upload_one(ehrgate, cast, tmp_path, category="history-physical")
    fails(ehrgate("fetch", record_id, who="doctor"), 1, "history-physical")


# --- audit and requests --------------------------------------------------------------------


def test_audit(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    record_id = upload_one(ehrgate, cast, tmp_path)
    ehrgate("fetch", record_id, "-o", tmp_path / "x.pdf", who="doctor")
    events = ehrgate.json("audit", who="patient")["events"]
    assert {"actor": cast.doctor.id, "action": "body", "decision": "allowed"}.items() <= next(
        e for e in events if e["record_id"] == record_id and e["action"] == "body"
    ).items()
    text = ehrgate("audit", who="patient")
    assert "allowed" in text.stdout
    fails(ehrgate("audit", "--patient", cast.pseudonym, who="doctor"), 1, "only the patient")
    fails(ehrgate("audit", who="doctor"), 2, "--patient")


def test_requests_send_and_list(ehrgate: Run, cast: Cast) -> None:
    sent = ehrgate.json(
        "requests", "send", "--patient", cast.pseudonym, "--rights", "read",
        "--categories", "history-physical", "--reason", "second opinion", who="doctor",
    )  # fmt: skip
    request_id = sent["access_request"]["request_id"]
    listed = ehrgate.json("requests", "list", who="patient")["access_requests"]
    assert request_id in [r["request_id"] for r in listed]
    assert "second opinion" in ehrgate("requests", "list", who="patient").stdout


def test_requests_approve_and_decline(ehrgate: Run, cast: Cast) -> None:
    def send(reason: str, *period: str) -> str:
        sent = ehrgate.json(
            "requests", "send", "--patient", cast.pseudonym, "--rights", "read",
            "--categories", "radiation-dose", "--reason", reason, *period, who="doctor",
        )  # fmt: skip
        request_id: str = sent["access_request"]["request_id"]
        return request_id

    approved = send("follow-up scan", "--from", "+0s", "--until", "+7d")
    declined = send("curiosity")
    pending = ehrgate.json("requests", "list", "--pending", who="patient")["access_requests"]
    assert {approved, declined} <= {r["request_id"] for r in pending}
    # only the patient answers
    fails(ehrgate("requests", "decline", declined, who="doctor"), 2, "only a patient")
    answer = ehrgate.json("requests", "approve", approved, who="patient")
    permission = answer["permission"]
    assert answer["access_request"]["decision"] == "approved"
    assert answer["access_request"]["permission_id"] == permission["permission_id"]
    assert permission["grantee"] == cast.doctor.id
    assert permission["categories"] == ["radiation-dose"]
    assert permission["not_after"] == answer["access_request"]["not_after"]
    # the request names no period: the patient says until when
    fails(ehrgate("requests", "approve", declined, who="patient"), 2, "until when")
    # naming a grant the patient does not have
    fails(
        ehrgate("requests", "approve", declined, "--permission", "nope", who="patient"),
        2,
        "no permission nope",
    )
    # naming an existing grant that is not to the requester: the ledger refuses it
    other = ehrgate.json(
        "grant", "--to", cast.system.id, "--rights", "read", "--categories", "lab-results",
        "--until", "+1d", who="patient",
    )["permission"]["permission_id"]  # fmt: skip
    fails(
        ehrgate("requests", "approve", declined, "--permission", other, who="patient"),
        2,
        "not a live grant",
    )
    assert (
        ehrgate.json("requests", "decline", declined, who="patient")["access_request"]["decision"]
        == "declined"
    )
    # answered once only
    fails(ehrgate("requests", "approve", approved, who="patient"), 2, "already approved")
    fails(ehrgate("requests", "decline", approved, who="patient"), 2, "already approved")
    still = ehrgate.json("requests", "list", "--pending", who="patient")["access_requests"]
    assert {approved, declined}.isdisjoint(r["request_id"] for r in still)
    text = ehrgate("requests", "list", who="patient").stdout
    assert "declined" in text
    assert "approved" in text


def test_notify_commands(ehrgate: Run, cast: Cast) -> None:
    added = ehrgate.json(
        "notify", "add-webhook", "https://hooks.example.org/ehr", "--kinds",
        "access_request,denied_read", who="patient",
    )  # fmt: skip
    assert added["kinds"] == ["access_request", "denied_read"]
    listed = ehrgate("notify", "webhooks", who="patient").stdout
    assert "https://hooks.example.org/ehr" in listed
    fails(
        ehrgate("notify", "add-webhook", "http://hooks.example.org/ehr", who="patient"),
        2,
        "https://",
    )
    fails(
        ehrgate("notify", "add-webhook", "https://hooks.example.org/x", "--kinds", "lunch",
                who="patient"),
        2,
        "unknown event kind",
    )  # fmt: skip
    removed = ehrgate("notify", "remove-webhook", added["endpoint_id"], who="patient")
    assert removed.returncode == 0, removed.stderr
    assert ehrgate.json("notify", "webhooks", who="patient")["webhooks"] == []
    key = ehrgate("notify", "key", who="patient").stdout.strip()
    assert key == ehrgate.json("ledger", "head", who="auditor")["ledger_public_key"]
    assert ehrgate.json("notify", "dead-letters", who="admin")["deliveries"] == []
    fails(ehrgate("notify", "dead-letters", who="patient"), 1, "admin")


# --- the ledger ----------------------------------------------------------------------------


def test_ledger_verify_from_the_gateway(ehrgate: Run, cast: Cast) -> None:
    report = ehrgate.json("ledger", "verify", "--gateway", cast.url, who="auditor")
    assert report["ok"] is True
    text = ehrgate("ledger", "verify", who="auditor")  # the global --gateway
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("ok:")
    fails(ehrgate("ledger", "verify", "--gateway", cast.url, who="doctor"), 1, "")


def test_ledger_verify_from_the_database(ehrgate: Run, cast: Cast) -> None:
    result = ehrgate("ledger", "verify", "--db", f"sqlite:///{cast.data_dir / 'ledger.db'}")
    assert result.returncode == 0, result.stderr


def test_ledger_proof_and_head(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    record_id = upload_one(ehrgate, cast, tmp_path)
    proof = ehrgate.json("ledger", "proof", record_id, who="doctor")
    assert proof["verified"] is True
    assert proof["record"]["record_id"] == record_id
    text = ehrgate("ledger", "proof", record_id, who="doctor")
    assert "leads to the signed root" in text.stdout
    head = ehrgate.json("ledger", "head")
    assert head["ledger_public_key"] == proof["ledger_public_key"]


def test_a_different_ledger_key_than_given_is_refused(
    ehrgate: Run, cast: Cast, tmp_path: Path
) -> None:
    record_id = upload_one(ehrgate, cast, tmp_path)
    other = IdentityKeys.generate("x", "admin").public().to_json()["signing_public_key"]
    fails(
        ehrgate("--ledger-key", other, "ledger", "proof", record_id, who="doctor"), 1, "not signed"
    )


# --- key files and the gateway itself -------------------------------------------------------


def test_a_missing_key_file(ehrgate: Run, tmp_path: Path) -> None:
    fails(ehrgate("--as", tmp_path / "nope.key", "whoami"), 2, "no key file")
    fails(ehrgate("whoami"), 2, "--as KEYFILE")


def test_a_passphrase_protected_key_file(ehrgate: Run, cast: Cast, tmp_path: Path) -> None:
    key_file = tmp_path / "doctor-locked.key"
    write_key_file(key_file, cast.doctor, passphrase="correct horse")
    fails(ehrgate("--as", key_file, "whoami"), 2, "EHRGATE_PASSPHRASE")
    wrong = ehrgate("--as", key_file, "whoami", env={"EHRGATE_PASSPHRASE": "wrong"})
    fails(wrong, 1, "passphrase")
    right = ehrgate(
        "--as",
        key_file,
        "--passphrase-env",
        "MY_SECRET",
        "whoami",
        env={"MY_SECRET": "correct horse"},
    )
    assert right.returncode == 0, right.stderr


def test_a_gateway_that_is_down(ehrgate: Run, tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    result = ehrgate("--gateway", down, "records", "--patient", "0" * 64, "--json", who="doctor")
    fails(result, 3, "cannot connect")
    assert json.loads(result.stdout)["error"] == "Unavailable"
    fails(ehrgate("ledger", "verify", "--gateway", down, who="auditor"), 3, "cannot connect")


def test_no_gateway_given(ehrgate: Run) -> None:
    fails(ehrgate("whoami", who="doctor", env={"EHRGATE_URL": ""}), 2, "--gateway URL")


def test_audit_shows_a_refused_record_commit(ehrgate: Run, cast: Cast) -> None:
    # The doctor may read lab-results, not write them: its commit is refused, and audited.
    capsule = os.urandom(200)
    tx = builders.record(
        cast.doctor,
        pseudonym=cast.pseudonym,
        category="lab-results",
        body_sha256="ab" * 32,
        size=13,
        locators=["file:blobs/ab/" + "ab" * 32],
        capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        content_type="application/pdf",
    )
    with httpx.Client(base_url=cast.url) as http:
        headers = {"Authorization": f"Bearer {login(http, cast.doctor)}"}
        body = {"transaction": tx.to_json(), "capsule": b64encode(capsule)}
        refused = http.post("/v1/records", json=body, headers=headers)
    assert refused.status_code == 403, refused.text
    events = ehrgate.json("audit", who="patient")["events"]
    event = [e for e in events if e["action"] == "commit_record"][-1]
    assert {"actor": cast.doctor.id, "category": "lab-results", "decision": "denied"}.items() <= (
        event.items()
    )
    assert event["reason"].startswith("record commit refused: ")
    text = ehrgate("audit", who="patient")
    assert text.returncode == 0, text.stderr
    assert "commit_record" in text.stdout
    assert "denied" in text.stdout
