"""Scoped key shares hold without the gateway: what a grantee can open with the bodies and
capsules in hand, read straight from the blob directory and the ledger database.

A live gateway seals records of several categories and months (uploaded by the SDK, which
seals each to the patient's published key of its category and month); the patient shares
with a grantee exactly what its grant covers. Then, bypassing the gateway entirely, the
grantee's seeds (its share, read from the database) open every in-scope record and nothing
else, and K opens everything. The refusals around it change nothing.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ehrgate import Client
from ehrgate.errors import Denied, EhrgateError, NotFound, RuleViolation, UsageError
from envelope import (
    HybridPrivateKey,
    IdentityKeys,
    InvalidEnvelope,
    PatientKey,
    ScopedSeeds,
    b64decode,
    open_body,
    open_capsule,
    open_scoped_share,
    open_with_patient_key,
)
from envelope.scoped import next_period, scoped_private_key
from ledger.wire import builders
from tests.client.live import Cast, at, live_cast

NOW = datetime.now(UTC)
THIS = NOW.strftime("%Y-%m")
GRANTEE = "dr-scope"


# The grant: lab-results, from three months ago to a day from now (so its last month is
# this month, or next month when today is the last day of a month).
GRANT_FROM = NOW - timedelta(days=92)
GRANT_UNTIL = NOW + timedelta(days=1)
FIRST = GRANT_FROM.strftime("%Y-%m")
LAST = (GRANT_UNTIL - timedelta(microseconds=1)).strftime("%Y-%m")

IN_SCOPE = [
    # months are shared whole: the first instant of not_before's month opens...
    ("lab-results", f"{FIRST}-01T00:00:00Z"),
    ("lab-results", at(next_period(FIRST))),
    ("lab-results", at(THIS, 1)),
    # ...and so does the end of not_after's month (the gateway still refuses such reads)
    ("lab-results", f"{LAST}-28T23:59:59Z"),
]
OUT_OF_SCOPE = [
    ("radiation-dose", at(THIS)),  # another category
    ("treatment-summary", at(next_period(FIRST))),
    ("lab-results", at(next_period(LAST))),  # sealed in a month after not_after's month
    ("lab-results", at(next_period(LAST, 5))),
    ("lab-results", at(next_period(FIRST, -1))),  # before not_before's month
]


@dataclass
class Site:
    cast: Cast
    grantee: IdentityKeys
    uploaded: dict[str, bytes]  # record id -> plaintext
    scope_of: dict[str, bool]  # record id -> within the grant

    def rows(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        return self.cast.ledger_rows(sql, *args)

    def capsule(self, record_id: str) -> bytes:
        return self.cast.stored_capsule(record_id)

    def body(self, record_id: str) -> bytes:
        [(sha256,)] = self.rows(
            "SELECT body_sha256 FROM state_records WHERE record_id = ?", record_id
        )
        for path in (self.cast.data_dir / "blobs").rglob("*"):
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
                return path.read_bytes()
        raise AssertionError(f"no body {sha256} in the blob directory")

    def share(self) -> ScopedSeeds:
        [(sealed,)] = self.rows(
            "SELECT sealed_key FROM state_key_shares WHERE pseudonym = ? AND grantee = ?",
            self.cast.pseudonym,
            self.grantee.id,
        )
        assert isinstance(sealed, str)
        return open_scoped_share(
            b64decode(sealed),
            self.grantee.encryption_key,
            pseudonym=self.cast.pseudonym,
            grantee_id=self.grantee.id,
        )

    def counts(self) -> tuple[object, ...]:
        tables = ("state_records", "state_key_shares", "state_published_keys", "ledger_capsules")
        return tuple(self.rows(f"SELECT count(*) FROM {t}")[0][0] for t in tables)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with live_cast(tmp_path_factory.mktemp("scoped")) as cast:
        grantee = IdentityKeys.generate(GRANTEE, "clinician")
        with cast.client(cast.admin) as admin:
            admin.enroll(grantee.public())
            admin.enroll(IdentityKeys.generate("dr-none", "clinician").public())
        with cast.client(cast.patient) as patient:
            patient.publish_keys(12, start=next_period(FIRST, -1))
            patient.grant(
                GRANTEE,
                rights=["read"],
                categories=["lab-results"],
                not_before=GRANT_FROM,
                not_after=GRANT_UNTIL,
            )
            patient.share_key(GRANTEE)
        uploaded: dict[str, bytes] = {}
        scope_of: dict[str, bool] = {}
        with cast.client(cast.system) as system:
            for inside, cases in ((True, IN_SCOPE), (False, OUT_OF_SCOPE)):
                for n, (category, created_at) in enumerate(cases):
                    text = f"%PDF-1.4 {category} {created_at} {inside} {n}".encode()
                    done = system.upload(
                        io.BytesIO(text),
                        pseudonym=cast.pseudonym,
                        category=category,
                        created_at=created_at,
                        filename="r.pdf",
                    )
                    uploaded[done.record.record_id] = text
                    scope_of[done.record.record_id] = inside
        yield Site(cast, grantee, uploaded, scope_of)


def opened_plaintext(site: Site, record_id: str, seeds: ScopedSeeds) -> bytes:
    opened = seeds.open_capsule(site.capsule(record_id))
    return b"".join(open_body([site.body(record_id)], opened))


def test_the_share_carries_exactly_the_grants_months_never_k(site: Site) -> None:
    seeds = site.share()
    months = [FIRST]
    while months[-1] != LAST:
        months.append(next_period(months[-1]))
    assert seeds.scope == [("lab-results", m) for m in months]
    k = site.cast.patient.patient_key.to_bytes()
    assert all(seed != k for seed in seeds.seeds.values())


def test_a_grantee_opens_every_in_scope_record_without_the_gateway(site: Site) -> None:
    seeds = site.share()
    inside = [r for r, within in site.scope_of.items() if within]
    assert len(inside) == len(IN_SCOPE)
    for record_id in inside:
        assert opened_plaintext(site, record_id, seeds) == site.uploaded[record_id]


def test_a_grantee_opens_no_record_outside_its_categories_or_months(site: Site) -> None:
    seeds = site.share()
    outside = [r for r, within in site.scope_of.items() if not within]
    assert len(outside) == len(OUT_OF_SCOPE)
    for record_id in outside:
        capsule = site.capsule(record_id)
        with pytest.raises(InvalidEnvelope):
            seeds.open_capsule(capsule)
        for seed in seeds.seeds.values():  # not with any seed it holds, whatever the entry
            with pytest.raises(InvalidEnvelope):
                open_capsule(capsule, HybridPrivateKey(seed), site.cast.pseudonym)


def test_the_patient_opens_every_record_with_k(site: Site) -> None:
    k = site.cast.patient.patient_key
    for record_id, plaintext in site.uploaded.items():
        opened = open_with_patient_key(site.capsule(record_id), k, site.cast.pseudonym)
        assert b"".join(open_body([site.body(record_id)], opened)) == plaintext


def test_another_k_opens_nothing(site: Site) -> None:
    other = PatientKey.generate()
    for record_id in site.uploaded:
        with pytest.raises(InvalidEnvelope):
            open_with_patient_key(site.capsule(record_id), other, site.cast.pseudonym)


def test_the_share_opens_for_no_other_grantee(site: Site) -> None:
    [(sealed,)] = site.rows(
        "SELECT sealed_key FROM state_key_shares WHERE grantee = ?", site.grantee.id
    )
    assert isinstance(sealed, str)
    with pytest.raises(InvalidEnvelope):
        open_scoped_share(
            b64decode(sealed),
            site.cast.doctor.encryption_key,
            pseudonym=site.cast.pseudonym,
            grantee_id=site.cast.doctor.id,
        )


def test_the_grantee_reads_through_the_sdk_what_its_seeds_open(site: Site) -> None:
    record_id = next(r for r, within in site.scope_of.items() if within)
    with site.cast.client(site.grantee) as grantee:
        _, plaintext = grantee.fetch_bytes(record_id)
    assert plaintext == site.uploaded[record_id]


# --- bad input: a clear error, and nothing changes --------------------------------------


def patient(site: Site) -> Client:
    return site.cast.client(site.cast.patient)


def test_a_share_for_a_grantee_without_a_grant_is_refused(site: Site) -> None:
    before = site.counts()
    with patient(site) as client, pytest.raises(UsageError, match="no read permission"):
        client.share_key("dr-none")
    keys = site.cast.patient
    tx = builders.key_share(
        keys.identity,
        pseudonym=keys.pseudonym,
        grantee="dr-none",
        sealed_key=b"\x01" * 200,
        scope=[("lab-results", THIS)],
    )
    with patient(site) as client, pytest.raises(EhrgateError, match="no read permission"):
        client._connection.request("POST", "/v1/key-shares", json=tx.to_json())
    assert site.counts() == before


def test_a_share_of_k_itself_is_refused(site: Site) -> None:
    before = site.counts()
    keys = site.cast.patient
    tx = builders.key_share(
        keys.identity, pseudonym=keys.pseudonym, grantee=GRANTEE, sealed_key=b"\x01" * 1168
    )
    with patient(site) as client, pytest.raises(EhrgateError, match="must be scoped"):
        client._connection.request("POST", "/v1/key-shares", json=tx.to_json())
    assert site.counts() == before


def test_publishing_for_someone_else_is_refused(site: Site) -> None:
    before = site.counts()
    key = scoped_private_key(PatientKey.generate(), "lab-results", "2099-01").public_key()
    tx = builders.publish_keys(
        site.cast.doctor,
        pseudonym=site.cast.pseudonym,
        keys=[("lab-results", "2099-01", key.to_bytes())],
    )
    with (
        site.cast.client(site.cast.doctor) as doctor,
        pytest.raises((Denied, RuleViolation), match="only the patient"),
    ):
        doctor._connection.request(
            "POST", f"/v1/patients/{site.cast.pseudonym}/keys", json=tx.to_json()
        )
    assert site.counts() == before


def test_a_conflicting_republication_is_refused(site: Site) -> None:
    before = site.counts()
    published = site.rows(
        "SELECT public_key_sha256 FROM state_published_keys WHERE category = ? AND period = ?",
        "lab-results",
        THIS,
    )
    keys = site.cast.patient
    other = scoped_private_key(PatientKey.generate(), "lab-results", THIS).public_key()
    tx = builders.publish_keys(
        keys.identity,
        pseudonym=keys.pseudonym,
        keys=[("lab-results", THIS, other.to_bytes())],
    )
    with patient(site) as client, pytest.raises(EhrgateError, match="never replaced"):
        client._connection.request("POST", f"/v1/patients/{keys.pseudonym}/keys", json=tx.to_json())
    assert site.counts() == before
    assert (
        site.rows(
            "SELECT public_key_sha256 FROM state_published_keys WHERE category = ? AND period = ?",
            "lab-results",
            THIS,
        )
        == published
    )


def test_an_upload_with_no_published_key_is_refused_and_stores_nothing(site: Site) -> None:
    before = site.counts()
    blobs = sorted((site.cast.data_dir / "blobs").rglob("*"))
    with (
        site.cast.client(site.cast.system) as system,
        pytest.raises(NotFound, match="ehrgate patient publish-keys"),
    ):
        system.upload(
            io.BytesIO(b"%PDF-1.4 old"),
            pseudonym=site.cast.pseudonym,
            category="lab-results",
            created_at="2001-01-01T00:00:00Z",
        )
    assert site.counts() == before
    assert sorted((site.cast.data_dir / "blobs").rglob("*")) == blobs


def test_publishing_again_adds_only_what_is_missing(site: Site) -> None:
    with patient(site) as client:
        assert client.publish_keys(3) == []  # this month and the next three: all there
        before = len(client.published_keys())
        [receipt] = client.publish_keys(0, start="2002-02")
        assert receipt.index > 0
        assert len(client.published_keys()) == before + len(client.categories())


def test_bad_publication_arguments_are_usage_errors(site: Site) -> None:
    with patient(site) as client:
        with pytest.raises(UsageError, match="YYYY-MM"):
            client.publish_keys(1, start="2026-13")
        with pytest.raises(UsageError, match="0 to"):
            client.publish_keys(500)


def test_a_reader_fetches_again_after_a_wider_share(site: Site) -> None:
    reader = IdentityKeys.generate("dr-later", "clinician")
    with site.cast.client(site.cast.admin) as admin:
        admin.enroll(reader.public())
    [(lab,)] = site.rows(
        "SELECT record_id FROM state_records WHERE category = 'lab-results' AND created_at = ?",
        at(THIS, 1).replace("Z", ".000000Z"),
    )
    [(dose,)] = site.rows("SELECT record_id FROM state_records WHERE category = 'radiation-dose'")
    assert isinstance(lab, str)
    assert isinstance(dose, str)
    with patient(site) as owner:
        owner.grant(reader.id, rights=["read"], categories=["lab-results"], not_after=GRANT_UNTIL)
        owner.share_key(reader.id)
    with site.cast.client(reader) as client:
        assert client.fetch_bytes(lab)[1] == site.uploaded[lab]  # keeps its seeds
        with patient(site) as owner:
            owner.grant(reader.id, rights=["read"], categories=["radiation-dose"],
                        not_after=GRANT_UNTIL)  # fmt: skip
            owner.share_key(reader.id)
        assert client.fetch_bytes(dose)[1] == site.uploaded[dose]  # the wider share, fetched
