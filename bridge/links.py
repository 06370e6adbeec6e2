"""Patient links: MRN ↔ pseudonym, made only from a statement the patient signed.

A statement (`ehrgate.links`) names the pseudonym, this hospital's id, the MRN and when it
was signed; it is accepted only if it verifies with the signing key of the patient's
identity as registered on the ledger (looked up through the SDK's directory), so the
hospital cannot link a pseudonym by itself. Links are kept in the bridge's database,
listed, and revoked by MRN.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.errors import InvalidLink, UnlinkedPatient
from bridge.store import BridgeStore, Link
from ehrgate.client import Client
from ehrgate.errors import EhrgateError, NotFound, UsageError, VerificationFailed
from ehrgate.links import LinkStatement
from envelope import EnvelopeError, VerifyKey, b64decode

CLOCK_SKEW = timedelta(minutes=5)


def how_to_link(mrn: str, hospital: str) -> str:
    return (
        f"the patient signs `ehrgate patient link-statement --hospital {hospital} --mrn {mrn}` "
        "and the hospital adds the file with `ehrgate bridge link add FILE`"
    )


class PatientLinks:
    """The links of one hospital, checked against the ledger's registered identities."""

    def __init__(self, store: BridgeStore, hospital: str) -> None:
        self._store = store
        self.hospital = hospital

    def add(self, document: Any, directory: Client) -> Link:
        """Verify a signed statement (JSON) and link its MRN; InvalidLink if it fails."""
        try:
            statement = LinkStatement.from_json(document)
        except UsageError as exc:
            raise InvalidLink(str(exc)) from exc
        if statement.hospital != self.hospital:
            raise InvalidLink(
                f"the statement is for hospital {statement.hospital!r}, this bridge is "
                f"{self.hospital!r}"
            )
        now = datetime.now(UTC)
        if statement.signed_at > now + CLOCK_SKEW:
            raise InvalidLink("the statement is signed in the future; check the patient's clock")
        self._check(statement, directory)
        current = self._store.link(statement.mrn)
        if (
            current is not None
            and current.revoked_at is None
            and current.pseudonym != statement.pseudonym
        ):
            raise InvalidLink(
                f"MRN {statement.mrn} is linked to another patient; revoke that link first "
                f"(`ehrgate bridge link revoke {statement.mrn}`)"
            )
        self._store.put_link(
            statement.mrn,
            statement.pseudonym,
            statement.to_json(),
            statement.signed_at.isoformat(),
            now.isoformat(),
        )
        found = self._store.link(statement.mrn)
        assert found is not None
        return found

    def _patient_key(self, pseudonym: str, directory: Client) -> VerifyKey:
        try:
            patient = directory.patient(pseudonym)
            identity = directory.identity_of(patient.identity_id)
        except NotFound as exc:
            raise InvalidLink(f"pseudonym {pseudonym} is not a registered patient") from exc
        except VerificationFailed as exc:
            raise InvalidLink(str(exc)) from exc
        except EhrgateError as exc:
            raise InvalidLink(f"cannot look up the patient on the gateway: {exc}") from exc
        if identity.role != "patient" or identity.id != pseudonym:
            raise InvalidLink(f"{pseudonym} is not a patient's identity")
        try:
            return VerifyKey(b64decode(identity.signing_public_key, length=32))
        except EnvelopeError as exc:
            raise InvalidLink(f"the patient's registered signing key is malformed: {exc}") from exc

    def verify_statement(self, link: Link, directory: Client) -> None:
        """Check a stored link's statement again (InvalidLink if it no longer verifies)."""
        self._check(LinkStatement.from_json(link.statement), directory)

    def _check(self, statement: LinkStatement, directory: Client) -> None:
        try:
            statement.verify(self._patient_key(statement.pseudonym, directory))
        except VerificationFailed as exc:
            raise InvalidLink(str(exc)) from exc

    def pseudonym_for(self, mrn: str) -> str:
        """The pseudonym linked to *mrn*; UnlinkedPatient saying how to link."""
        found = self._store.link(mrn)
        if found is None or found.revoked_at is not None:
            state = "was unlinked" if found is not None else "is linked to no patient"
            raise UnlinkedPatient(f"MRN {mrn} {state}: {how_to_link(mrn, self.hospital)}")
        return found.pseudonym

    def mrn_map(self) -> dict[str, str]:
        """MRN → pseudonym for every link in force (revoked links left out)."""
        return {link.mrn: link.pseudonym for link in self.list()}

    def mrns_of(self, pseudonym: str) -> list[str]:
        return self._store.mrns_of(pseudonym)

    def list(self, *, include_revoked: bool = False) -> list[Link]:
        return self._store.links(include_revoked=include_revoked)

    def revoke(self, mrn: str) -> None:
        if not self._store.revoke_link(mrn, datetime.now(UTC).isoformat()):
            raise UnlinkedPatient(f"MRN {mrn} is not linked; nothing to revoke")
