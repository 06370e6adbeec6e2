"""Re-keying holds without the gateway: after a patient rotates K, what the old K, the new
K and each grantee's re-made share open, with bodies and capsules read straight from the
ledger database and the blob directory.

A live gateway has records of several categories and months, one of them sealed before
scoped keys (to the patient's single record key, with a doctor as an extra recipient); two
grantees hold scoped shares. The patient rotates K through the SDK; then, bypassing the
gateway: the new K opens every record, the old K (and every key derived from it) opens no
capsule left anywhere, no copy of a replaced capsule remains in the database or the store,
records uploaded afterwards are sealed to keys the old K does not derive, each grantee's new
share opens exactly its grant, and `ledger verify` (with the capsule check) passes.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ehrgate import Client
from ehrgate._client.rekey import RotationProgress
from ehrgate.errors import Conflict, Denied, EhrgateError, InvalidRequest, UsageError
from envelope import (
    HybridPrivateKey,
    IdentityKeys,
    InvalidEnvelope,
    PatientKey,
    PatientKeys,
    ScopedSeeds,
    Sealer,
    b64decode,
    b64encode,
    load_key_file,
    open_body,
    open_capsule,
    open_scoped_share,
    open_with_patient_key,
    write_key_file,
)
from envelope.capsule import capsule_outline
from envelope.rotation import rewrap_to
from envelope.scoped import next_period, scoped_private_key
from ledger.sources import DatabaseSource
from ledger.verify import verify
from ledger.wire import builders
from tests.client.live import Cast, at, live_cast, new_patient

NOW = datetime.now(UTC)
THIS = NOW.strftime("%Y-%m")
LAST_MONTH = next_period(THIS, -1)
GRANTEE = "dr-scope"


# (category, created_at, within dr-scope's grant: lab-results of last month and this one)
UPLOADS = [
    ("lab-results", at(LAST_MONTH), True),
    ("lab-results", at(THIS, 1), True),
    ("radiation-dose", at(THIS, 2), False),
    ("treatment-summary", at(LAST_MONTH, 3), False),
    ("lab-results", at(next_period(THIS, -3)), False),
]


@dataclass
class Site:
    cast: Cast
    key_file: Path
    old: PatientKey
    grantee: IdentityKeys
    uploaded: dict[str, bytes] = field(default_factory=dict)  # record id -> plaintext
    in_grant: dict[str, bool] = field(default_factory=dict)
    legacy: str = ""  # the record sealed to the single record key, with an extra recipient
    old_capsules: dict[str, bytes] = field(default_factory=dict)  # record id -> before
    old_seeds: dict[str, ScopedSeeds] = field(default_factory=dict)  # grantee -> before
    after: list[str] = field(default_factory=list)  # records uploaded after the rotation

    def rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        return self.cast.ledger_rows(sql, *args)

    def capsule(self, record_id: str) -> bytes:
        return self.cast.stored_capsule(record_id)

    def blobs(self) -> dict[str, bytes]:
        """Every blob in the store's directory, by SHA-256."""
        return {
            hashlib.sha256(p.read_bytes()).hexdigest(): p.read_bytes()
            for p in (self.cast.data_dir / "blobs").rglob("*")
            if p.is_file()
        }

    def body(self, record_id: str) -> bytes:
        [(sha256,)] = self.rows(
            "SELECT body_sha256 FROM state_records WHERE record_id = ?", record_id
        )
        return self.blobs()[sha256]

    def share(self, grantee: IdentityKeys) -> ScopedSeeds:
        [(sealed,)] = self.rows(
            "SELECT sealed_key FROM state_key_shares WHERE pseudonym = ? AND grantee = ?",
            self.cast.pseudonym,
            grantee.id,
        )
        return open_scoped_share(
            b64decode(sealed),
            grantee.encryption_key,
            pseudonym=self.cast.pseudonym,
            grantee_id=grantee.id,
        )

    def new_key(self) -> PatientKey:
        keys = load_key_file(self.key_file)
        assert isinstance(keys, PatientKeys)
        return keys.patient_key

    def plaintext(self, record_id: str, key: PatientKey) -> bytes:
        opened = open_with_patient_key(self.capsule(record_id), key, self.cast.pseudonym)
        return b"".join(open_body([self.body(record_id)], opened))


def upload_legacy(client: Client, cast: Cast, text: bytes) -> str:
    """A record sealed as before scoped keys: to the patient's single record key (version 1
    capsule), with the doctor as a second recipient."""

    def sealer(signer: IdentityKeys, pseudonym: str, category: str, name: str, media: str,
               created: str) -> Sealer:  # fmt: skip
        return Sealer(
            recipients=[
                (pseudonym, cast.patient.patient_key.record_public_key()),
                (cast.doctor.id, cast.doctor.encryption_key.public_key()),
            ],
            filename=name,
            content_type=media,
            pseudonym=pseudonym,
            category=category,
            created_at=created,
            uploader_id=signer.id,
            signer=signer,
        )

    client._uploads._sealer = sealer  # type: ignore[method-assign, assignment]
    done = client.upload(io.BytesIO(text), pseudonym=cast.pseudonym, category="lab-results",
                         created_at=at(LAST_MONTH, 20), filename="old.pdf")  # fmt: skip
    return done.record.record_id


def build_site(directory: Path) -> Iterator[Site]:
    with live_cast(directory) as cast:
        grantee = IdentityKeys.generate(GRANTEE, "clinician")
        key_file = cast.key_file("patient")
        site = Site(cast, key_file, cast.patient.patient_key, grantee)
        with cast.client(cast.admin) as admin:
            admin.enroll(grantee.public())
        with cast.client(cast.patient) as patient:
            patient.publish_keys(6, start=next_period(THIS, -4))
            patient.grant(
                GRANTEE,
                rights=["read"],
                categories=["lab-results"],
                not_before=NOW - timedelta(days=40),
                not_after=NOW + timedelta(days=1),
            )
            patient.share_key(GRANTEE)
            patient.share_key(cast.doctor.id)  # again, now that the months are published
        with cast.client(cast.system) as system:
            for n, (category, created_at, inside) in enumerate(UPLOADS):
                text = f"%PDF-1.4 {category} {created_at} {n}".encode()
                done = system.upload(
                    io.BytesIO(text),
                    pseudonym=cast.pseudonym,
                    category=category,
                    created_at=created_at,
                    filename="r.pdf",
                )
                site.uploaded[done.record.record_id] = text
                site.in_grant[done.record.record_id] = inside
            text = b"%PDF-1.4 sealed before scoped keys"
            site.legacy = upload_legacy(system, cast, text)
            site.uploaded[site.legacy] = text
            site.in_grant[site.legacy] = True
        site.old_capsules = {r: site.capsule(r) for r in site.uploaded}
        site.old_seeds = {g.id: site.share(g) for g in (grantee, cast.doctor)}
        yield site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    seen: list[tuple[str, int, int]] = []

    def progress(p: RotationProgress) -> None:
        seen.append((p.phase, p.done, p.total))

    for found in build_site(tmp_path_factory.mktemp("rekey")):
        # an uploader that looked the patient's keys up before the rotation, and keeps them
        stale = found.cast.client(found.cast.system)
        text = b"%PDF-1.4 uploaded by a client that keeps keys"
        up = stale.upload(io.BytesIO(text), pseudonym=found.cast.pseudonym,
                          category="lab-results", filename="s.pdf")  # fmt: skip
        found.uploaded[up.record.record_id] = text
        found.in_grant[up.record.record_id] = True
        found.old_capsules[up.record.record_id] = found.capsule(up.record.record_id)
        with found.cast.client(found.cast.patient) as patient:
            done = patient.rotate_patient_key(found.key_file, progress=progress)
        assert done.generation == 2
        assert not done.resumed
        assert not done.unopened
        assert done.rewrapped == len(found.uploaded)
        assert sorted(done.reshared) == sorted([GRANTEE, found.cast.doctor.id])
        assert ("rewrap", len(found.uploaded), len(found.uploaded)) in seen
        with found.cast.client(found.cast.system) as system:
            for category in ("lab-results", "radiation-dose"):
                text = f"%PDF-1.4 after the rotation {category}".encode()
                up = system.upload(io.BytesIO(text), pseudonym=found.cast.pseudonym,
                                   category=category, filename="new.pdf")  # fmt: skip
                found.uploaded[up.record.record_id] = text
                found.in_grant[up.record.record_id] = category == "lab-results"
                found.after.append(up.record.record_id)
        # the stale client's next upload is refused, then sealed anew to the current key
        text = b"%PDF-1.4 uploaded after the rotation by the client that kept keys"
        up = stale.upload(io.BytesIO(text), pseudonym=found.cast.pseudonym,
                          category="lab-results", filename="s2.pdf")  # fmt: skip
        stale.close()
        found.uploaded[up.record.record_id] = text
        found.in_grant[up.record.record_id] = True
        found.after.append(up.record.record_id)
        yield found


# --- the properties, bypassing the gateway ------------------------------------------------


def test_the_key_file_has_a_new_k_of_generation_2_and_the_same_pseudonym(site: Site) -> None:
    keys = load_key_file(site.key_file)
    assert isinstance(keys, PatientKeys)
    assert keys.pseudonym == site.cast.pseudonym
    assert (keys.key_generation, keys.previous_key) == (2, None)
    assert keys.patient_key != site.old
    assert keys.patient_key.record_key_version == 2
    assert keys.identity.id == site.cast.patient.identity.id


def test_the_new_k_opens_every_record(site: Site) -> None:
    new = site.new_key()
    for record_id, text in site.uploaded.items():
        assert site.plaintext(record_id, new) == text


def test_the_old_k_opens_no_record_rewrapped_or_uploaded_afterwards(site: Site) -> None:
    old = site.old
    for record_id in site.uploaded:
        capsule = site.capsule(record_id)
        with pytest.raises(InvalidEnvelope):
            open_with_patient_key(capsule, old, site.cast.pseudonym)
        with pytest.raises(InvalidEnvelope):  # nor its single record key
            open_capsule(capsule, old.record_private_key(), site.cast.pseudonym)
        outline = capsule_outline(capsule)
        [(_, named)] = outline.recipients.items()
        category, period = named.split("/")[1:] if named else ("", "")
        with pytest.raises(InvalidEnvelope):  # nor its scoped key of the capsule's month
            open_capsule(capsule, scoped_private_key(old, category, period), site.cast.pseudonym)


def test_no_copy_of_a_replaced_capsule_is_left_in_the_database_or_the_store(site: Site) -> None:
    stored = {sha for (sha,) in site.rows("SELECT sha256 FROM ledger_capsules")}
    current = {sha for (sha,) in site.rows("SELECT capsule_sha256 FROM state_records")}
    assert stored == current
    blobs = site.blobs()
    for record_id, before in site.old_capsules.items():
        sha = hashlib.sha256(before).hexdigest()
        assert sha not in stored, record_id
        assert sha not in blobs, record_id
    assert current <= set(blobs)  # the new capsules have their second copy
    # and nothing in the store opens with the old K
    for data in blobs.values():
        try:
            capsule_outline(data)
        except InvalidEnvelope:
            continue  # a body
        with pytest.raises(InvalidEnvelope):
            open_with_patient_key(data, site.old, site.cast.pseudonym)
    assert site.rows("SELECT count(*) FROM gateway_rekey_deletions") == [(0,)]


def test_bodies_never_change_and_each_rewrap_is_a_patient_signed_rekey(site: Site) -> None:
    rows = site.rows(
        "SELECT record_id, key_generation, rekeyed_at FROM state_records WHERE pseudonym = ?",
        site.cast.pseudonym,
    )
    for record_id, generation, rekeyed_at in rows:
        assert generation == 2
        assert (rekeyed_at is None) == (record_id in site.after)
    signers = site.rows("SELECT DISTINCT signer FROM ledger_entries WHERE tx_type = 'rekey'")
    assert signers == [(site.cast.patient.identity.id,)]
    for record_id in site.old_capsules:  # the same body opens under the new capsule
        assert site.plaintext(record_id, site.new_key()) == site.uploaded[record_id]


def test_the_legacy_record_is_moved_onto_a_scoped_key_without_its_extra_recipient(
    site: Site,
) -> None:
    before, after = (
        capsule_outline(site.old_capsules[site.legacy]),
        capsule_outline(site.capsule(site.legacy)),
    )
    assert before.version == 1
    assert set(before.recipients) == {site.cast.pseudonym, "dr-grey"}
    assert after.version == 2
    assert after.recipients == {site.cast.pseudonym: f"scoped-v2/lab-results/{LAST_MONTH}"}
    assert after.meta == before.meta
    with pytest.raises(InvalidEnvelope):
        open_capsule(site.capsule(site.legacy), site.cast.doctor.encryption_key, "dr-grey")


def test_each_grantees_new_share_opens_exactly_its_grant(site: Site) -> None:
    scoped = site.share(site.grantee)
    for record_id, inside in site.in_grant.items():
        capsule = site.capsule(record_id)
        if inside:
            opened = scoped.open_capsule(capsule)
            assert b"".join(open_body([site.body(record_id)], opened)) == site.uploaded[record_id]
        else:
            with pytest.raises(InvalidEnvelope):
                scoped.open_capsule(capsule)
    # the doctor: lab-results and radiation-dose, from this month (its grant's start) on
    doctor = site.share(site.cast.doctor)
    assert {c for c, _ in doctor.scope} == {"lab-results", "radiation-dose"}
    assert min(p for _, p in doctor.scope) == THIS
    for record_id in site.uploaded:
        [(category, created_at)] = site.rows(
            "SELECT category, created_at FROM state_records WHERE record_id = ?", record_id
        )
        if (category, created_at[:7]) in doctor.seeds:
            doctor.open_capsule(site.capsule(record_id))
        else:
            with pytest.raises(InvalidEnvelope):
                doctor.open_capsule(site.capsule(record_id))


def test_the_grantees_old_seeds_open_nothing_now(site: Site) -> None:
    for seeds in site.old_seeds.values():
        for record_id in site.uploaded:
            capsule = site.capsule(record_id)
            with pytest.raises(InvalidEnvelope):
                seeds.open_capsule(capsule)
            for seed in seeds.seeds.values():
                with pytest.raises(InvalidEnvelope):
                    open_capsule(capsule, HybridPrivateKey(seed), site.cast.pseudonym)


def test_the_published_keys_are_the_new_generations(site: Site) -> None:
    new = site.new_key()
    rows = site.rows(
        "SELECT category, period, public_key_sha256, generation FROM state_published_keys "
        "WHERE pseudonym = ?",
        site.cast.pseudonym,
    )
    assert rows
    assert {g for *_, g in rows} == {2}
    for category, period, sha, _ in rows:
        public = scoped_private_key(new, category, period).public_key().to_bytes()
        assert hashlib.sha256(public).hexdigest() == sha


def test_the_ledger_and_its_capsules_verify(site: Site) -> None:
    with DatabaseSource(f"sqlite:///{site.cast.data_dir / 'ledger.db'}") as source:
        report = verify(source)
    assert report.ok, report.summary()
    assert report.capsules_checked == len(site.uploaded)
    assert report.capsule_damage == []
    assert report.notes == []  # no superseded capsule kept


def test_the_patient_reads_its_records_through_the_sdk_after_the_rotation(site: Site) -> None:
    keys = load_key_file(site.key_file)
    assert isinstance(keys, PatientKeys)
    with site.cast.client(keys) as patient:
        for record_id in (site.legacy, site.after[0]):
            _, text = patient.fetch_bytes(record_id)
            assert text == site.uploaded[record_id]


def test_a_second_run_has_nothing_left_to_do_and_changes_nothing(site: Site) -> None:
    keys = load_key_file(site.key_file)
    assert isinstance(keys, PatientKeys)
    with site.cast.client(keys) as patient:
        status = patient.rekey_status()
        assert (status["generation"], status["remaining"]) == (2, 0)


# --- bad input: a clear error, and nothing changes ----------------------------------------


def counts(site: Site) -> tuple[Any, ...]:
    """What a refusal must leave as it was (it adds only its own `access` entry)."""
    tables = ("ledger_capsules", "state_key_shares", "state_published_keys")
    return (
        *(site.rows(f"SELECT count(*) FROM {t}")[0][0] for t in tables),
        site.rows("SELECT record_id, capsule_sha256, key_generation FROM state_records "
                  "ORDER BY record_id"),
        len(site.blobs()),
        site.rows("SELECT count(*) FROM ledger_entries WHERE tx_type != 'access'"),
    )  # fmt: skip


def current_keys(site: Site) -> PatientKeys:
    keys = load_key_file(site.key_file)
    assert isinstance(keys, PatientKeys)
    return keys


def rekey_item(keys: PatientKeys, record_id: str, capsule: bytes) -> dict[str, Any]:
    sha = hashlib.sha256(capsule).hexdigest()
    tx = builders.rekey(keys.identity, record_id=record_id, capsule_sha256=sha, generation=2)
    return {"transaction": tx.to_json(), "capsule": b64encode(capsule)}


def post(client: Client, pseudonym: str, items: list[dict[str, Any]]) -> Any:
    return client._connection.request("POST", f"/v1/patients/{pseudonym}/rekey",
                                      json={"items": items})  # fmt: skip


def test_a_rekey_of_another_patients_record_is_refused(site: Site) -> None:
    other = new_patient("Bo Other")
    with site.cast.client(other) as client:
        client.register_patient()
    before = counts(site)
    record_id = next(iter(site.old_capsules))
    capsule = site.capsule(record_id)
    with site.cast.client(other) as client:
        # at the other patient's address: the record is not its own
        with pytest.raises(Denied, match="not a record of patient"):
            post(client, other.pseudonym, [rekey_item(other, record_id, capsule)])
        # at the owner's address: only the patient itself re-keys
        with pytest.raises(Denied, match="only the patient itself"):
            post(client, site.cast.pseudonym, [rekey_item(other, record_id, capsule)])
    assert counts(site) == before


def test_a_capsule_of_another_record_or_key_is_refused(site: Site) -> None:
    keys = current_keys(site)
    first, second = site.legacy, next(iter(site.old_capsules))  # lab-results, last month
    before = counts(site)
    new = keys.patient_key
    with site.cast.client(keys) as client:
        # the (rewrapped) capsule of another record of the same category
        with pytest.raises(InvalidRequest, match="not a rewrap of record"):
            post(client, keys.pseudonym, [rekey_item(keys, first, site.capsule(second))])
        # a capsule that keeps another recipient, or names another month's key
        opened = open_with_patient_key(site.capsule(first), new, keys.pseudonym)
        period = opened.created_at[:7]
        for extra in (
            [(keys.pseudonym, scoped_private_key(new, "lab-results", period).public_key()),
             ("dr-grey", site.cast.doctor.encryption_key.public_key())],
        ):  # fmt: skip
            from envelope import rewrap_capsule

            wide = rewrap_capsule(
                site.capsule(first),
                scoped_private_key(new, "lab-results", period),
                keys.pseudonym,
                extra,
            )
            with pytest.raises(InvalidRequest, match="exactly one entry"):
                post(client, keys.pseudonym, [rekey_item(keys, first, wide)])
        # one bad item refuses the whole batch: the good one is not committed either
        good = site.capsule(second)
        batch = [rekey_item(keys, second, good), rekey_item(keys, first, good)]
        with pytest.raises(InvalidRequest):
            post(client, keys.pseudonym, batch)
    assert counts(site) == before


def test_the_client_refuses_a_capsule_the_old_key_does_not_open(site: Site) -> None:
    record_id = site.legacy
    stranger = PatientKey.generate()
    with pytest.raises(InvalidEnvelope):
        rewrap_to(site.capsule(record_id), old=stranger, new=site.new_key(),
                  pseudonym=site.cast.pseudonym, category="lab-results",
                  created_at=at(LAST_MONTH, 20), body_sha256="00" * 32)  # fmt: skip
    # and one that opens but is another record's
    other = next(r for r in site.old_capsules if r != record_id)
    [(body_sha256, created_at)] = site.rows(
        "SELECT body_sha256, created_at FROM state_records WHERE record_id = ?", record_id
    )
    with pytest.raises(InvalidEnvelope):
        rewrap_to(site.capsule(other), old=site.new_key(), new=PatientKey.generate(),
                  pseudonym=site.cast.pseudonym, category="lab-results",
                  created_at=created_at, body_sha256=body_sha256)  # fmt: skip


def test_a_version_1_key_file_is_refused_with_the_upgrade_command(
    site: Site, tmp_path: Path
) -> None:
    v1 = Path(__file__).parents[1] / "vectors" / "envelope" / "keyfiles"
    candidates = [p for p in v1.glob("v1-*patient*.key") if "passphrase" not in p.name]
    assert candidates, "no version 1 patient key file among the vectors"
    copy = tmp_path / "v1.key"
    copy.write_bytes(candidates[0].read_bytes())
    before = copy.read_bytes()
    keys = current_keys(site)
    with site.cast.client(keys) as client, pytest.raises(UsageError, match="keys upgrade"):
        client.rotate_patient_key(copy)
    assert copy.read_bytes() == before


def test_another_patients_key_file_is_refused(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "other.key"
    write_key_file(path, new_patient("Cy Third"))
    before = counts(site), path.read_bytes()
    with (
        site.cast.client(current_keys(site)) as client,
        pytest.raises(UsageError, match="another patient"),
    ):
        client.rotate_patient_key(path)
    assert (counts(site), path.read_bytes()) == before


def test_a_stale_key_file_is_refused(site: Site, tmp_path: Path) -> None:
    """The key file from before the rotation (generation 1) cannot start another one."""
    path = tmp_path / "stale.key"
    write_key_file(path, site.cast.patient)
    before = counts(site)
    with (
        site.cast.client(current_keys(site)) as client,
        pytest.raises(UsageError, match="newest key file"),
    ):
        client.rotate_patient_key(path)
    assert counts(site) == before


def test_only_the_patient_reads_the_rekey_status(site: Site) -> None:
    with site.cast.client(site.cast.doctor) as doctor, pytest.raises(EhrgateError):
        doctor._connection.request("GET", f"/v1/patients/{site.cast.pseudonym}/rekey")


def test_a_record_sealed_to_the_old_record_key_is_refused_after_the_rotation(site: Site) -> None:
    before = counts(site)
    with (
        site.cast.client(site.cast.system) as system,
        pytest.raises(InvalidRequest, match="rotated its key"),
    ):
        upload_legacy(system, site.cast, b"%PDF-1.4 sealed the old way")
    after = counts(site)
    assert before[:4] == after[:4]  # no record, capsule, share or key (an orphan body stays)


def test_a_record_naming_an_older_generation_is_refused(site: Site) -> None:
    record_id = site.after[0]
    [(raw,)] = site.rows(
        "SELECT e.tx FROM ledger_entries e JOIN state_records r ON e.idx = r.entry_index "
        "WHERE r.record_id = ?",
        record_id,
    )
    before = counts(site)
    tx = json.loads(bytes(raw))
    with site.cast.client(site.cast.system) as system, pytest.raises(Conflict) as caught:
        system._connection.request(
            "POST",
            "/v1/records",
            json={
                "transaction": tx,
                "capsule": b64encode(site.capsule(record_id)),
                "key_generation": 1,
            },
        )
    assert caught.value.code == "stale-key-generation"
    assert "rotated its key" in caught.value.message
    assert counts(site) == before
