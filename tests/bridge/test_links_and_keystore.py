"""Patient links (only from a statement the patient signed) and the encrypted key store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.errors import BridgeUsageError, InvalidLink, UnlinkedPatient
from bridge.keystore import KeyStore
from ehrgate.cli import cli
from ehrgate.links import make_link_statement
from ehrgate.pdf import text_pdf
from envelope import IdentityKeys
from tests.bridge.live import PASSPHRASE, LiveBridge
from tests.client.live import Cast, new_patient


def test_links_need_the_patients_own_signature(live: LiveBridge, cast: Cast) -> None:
    links = live.service.links
    directory = live.service.identities.client("aria-export")
    statement = make_link_statement(cast.patient, hospital="st-elsewhere", mrn="MRN-2002")
    forged = statement.to_json()
    forged["mrn"] = "MRN-2003"
    with pytest.raises(InvalidLink, match="does not verify"):
        links.add(forged, directory)
    other_hospital = make_link_statement(cast.patient, hospital="elsewhere", mrn="MRN-2002")
    with pytest.raises(InvalidLink, match="hospital"):
        links.add(other_hospital.to_json(), directory)
    future = make_link_statement(
        cast.patient, hospital="st-elsewhere", mrn="MRN-2002",
        at=datetime.now(UTC) + timedelta(hours=1),
    )  # fmt: skip
    with pytest.raises(InvalidLink, match="future"):
        links.add(future.to_json(), directory)
    stranger = make_link_statement(new_patient("Not Registered"), hospital="st-elsewhere", mrn="M9")
    with pytest.raises(InvalidLink, match="not a registered patient"):
        links.add(stranger.to_json(), directory)
    with pytest.raises(UnlinkedPatient, match="MRN-2002"):
        links.pseudonym_for("MRN-2002")

    links.add(statement.to_json(), directory)
    assert links.pseudonym_for("MRN-2002") == cast.pseudonym
    assert "MRN-2002" in [link.mrn for link in links.list()]
    links.revoke("MRN-2002")
    with pytest.raises(UnlinkedPatient, match="unlinked"):
        links.pseudonym_for("MRN-2002")
    with pytest.raises(UnlinkedPatient):
        links.revoke("MRN-2002")


def test_key_store_is_encrypted_at_rest(tmp_path: Path) -> None:
    store = KeyStore(tmp_path, PASSPHRASE)
    keys = IdentityKeys.generate("ward-7", "clinician")
    path = store.add(keys)
    text = path.read_text()
    assert "encrypted" in text
    assert '"secret"' not in text
    assert KeyStore(tmp_path, PASSPHRASE).identity("ward-7").public() == keys.public()
    with pytest.raises(BridgeUsageError, match="passphrase"):
        KeyStore(tmp_path, "wrong passphrase").identity("ward-7")
    with pytest.raises(BridgeUsageError, match="holds no identity"):
        store.identity("nobody")
    with pytest.raises(BridgeUsageError, match="already holds"):
        store.add(keys)


def test_cli_link_statement_add_list_revoke(
    cast: Cast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    statement = tmp_path / "link.json"
    made = runner.invoke(
        cli,
        ["--as", str(cast.key_file("patient")), "patient", "link-statement",
         "--hospital", "general", "--mrn", "A-77", "-o", str(statement)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert json.loads(statement.read_text())["mrn"] == "A-77"
    data = tmp_path / "bridge"
    KeyStore(data / "keys", PASSPHRASE).add(cast.system)
    for name, value in {
        "GATEWAY_URL": cast.url, "HOSPITAL_ID": "general", "SYSTEM_IDENTITY": "aria-export",
        "DATA_DIR": str(data), "PASSPHRASE": PASSPHRASE,
    }.items():  # fmt: skip
        monkeypatch.setenv(f"EHRGATE_BRIDGE_{name}", value)
    monkeypatch.setenv("EHRGATE_KNOWN_LEDGERS", str(tmp_path / "pins.json"))
    added = runner.invoke(cli, ["bridge", "link", "add", str(statement)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, ["bridge", "link", "list", "--json"])
    assert [x["mrn"] for x in json.loads(listed.output)["links"]] == ["A-77"]

    # import-aria maps MRNs with the bridge's links instead of a CSV.
    export = tmp_path / "export"
    (export / "A-77" / "Lab Results").mkdir(parents=True)
    (export / "A-77" / "Lab Results" / "cbc.pdf").write_bytes(text_pdf(["CBC"]))
    (export / "B-1" / "Lab Results").mkdir(parents=True)
    (export / "B-1" / "Lab Results" / "other.pdf").write_bytes(text_pdf(["other"]))
    system = ["--gateway", cast.url, "--as", str(cast.key_file("system"))]
    imported = runner.invoke(cli, [*system, "import-aria", str(export), "--links", "--json"])
    outcomes = {o["file"]: o for o in json.loads(imported.output)["outcomes"]}
    assert outcomes["A-77/Lab Results/cbc.pdf"]["status"] == "uploaded", imported.output
    assert outcomes["B-1/Lab Results/other.pdf"]["status"] != "uploaded"
    assert "B-1" in outcomes["B-1/Lab Results/other.pdf"]["detail"]
    both = runner.invoke(
        cli, [*system, "import-aria", str(export), "--links", "--mapping", str(statement)]
    )
    assert both.exit_code == 2
    assert "one of the two" in both.output
    assert runner.invoke(cli, ["bridge", "link", "revoke", "A-77"]).exit_code == 0
    again = runner.invoke(cli, ["bridge", "link", "revoke", "A-77"])
    assert again.exit_code == 2
    assert "not linked" in again.output


def test_bridge_commands_name_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_URL", "HOSPITAL_ID", "SYSTEM_IDENTITY"):
        monkeypatch.delenv(f"EHRGATE_BRIDGE_{name}", raising=False)
    answer = CliRunner().invoke(cli, ["bridge", "serve"])
    assert answer.exit_code == 2
    assert "EHRGATE_BRIDGE_GATEWAY_URL" in answer.output
