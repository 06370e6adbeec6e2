"""Every transaction type, allowed and denied, submitted through the ledger on each database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from envelope import IdentityKeys, SigningKey
from ledger import TX_TYPES, Ledger, LedgerSigner, RuleViolation, Transaction
from ledger.wire import builders as b
from ledger.wire.clock import format_time
from ledger.wire.rotation import RotationRequest, request_rotation
from tests.ledger import consent_cases as cc
from tests.ledger.conftest import World, pseudonym_for

HOUR = timedelta(hours=1)


def _grant(w: World, actor: b.Actor | None = None, **overrides: object) -> Transaction:
    fields: dict[str, object] = {
        "pseudonym": w.pseudonym,
        "grantee": w.dr_other.id,
        "rights": ["read"],
        "categories": ["radiation-dose"],
        "not_before": w.clock(),
        "not_after": w.clock() + HOUR,
        "issued_at": w.clock(),
    }
    fields.update(overrides)
    return b.grant(actor or w.patient, **fields)  # type: ignore[arg-type]


def _forged(tx: Transaction) -> Transaction:
    """The same transaction with a signature by a key that is not the signer's."""
    from ledger.wire.encoding import canonical

    other = SigningKey.generate()
    return Transaction(
        tx.type, tx.body, tx.signer, other.sign_bytes(canonical(tx.signed_payload()))
    )


def _edited(tx: Transaction, **changes: object) -> Transaction:
    """The transaction with body fields changed after signing."""
    return Transaction(tx.type, {**tx.body, **changes}, tx.signer, tx.signature)


KEY_A, KEY_B = b"\x01" * 1216, b"\x02" * 1216


def _publish(
    w: World,
    keys: list[tuple[str, str, bytes]],
    *,
    actor: IdentityKeys | None = None,
    first: list[tuple[str, str, bytes]] | None = None,
) -> Transaction:
    if first is not None:
        w.ledger.submit(b.publish_keys(w.patient, pseudonym=w.pseudonym, keys=first,
                                       issued_at=w.clock()))  # fmt: skip
    return b.publish_keys(actor or w.patient, pseudonym=w.pseudonym, keys=keys,
                          issued_at=w.clock())  # fmt: skip


def _scoped_share(w: World, scope: list[str], grantee: str | None = None) -> Transaction:
    tx = b.key_share(w.patient, pseudonym=w.pseudonym, grantee=grantee or w.dr.id,
                     sealed_key=b"seeds", scope=[], issued_at=w.clock())  # fmt: skip
    return b.sign(w.patient, "key_share", {**tx.body, "scope": scope}, issued_at=w.clock())


_SAME = object()


def _erase(
    w: World,
    actor: b.Actor,
    *,
    record_id: object = _SAME,
    pseudonym: str | None = None,
    reason: str | None = None,
) -> Transaction:
    rid = w.record_id if record_id is _SAME else record_id
    assert rid is None or isinstance(rid, str)
    return b.erase(actor, pseudonym=pseudonym or w.pseudonym, record_id=rid, reason=reason,
                   issued_at=w.clock())  # fmt: skip


def _after_erasure(w: World, tx: Transaction) -> Transaction:
    """*tx*, made once the world's record was erased by its patient."""
    w.ledger.submit(_erase(w, w.patient))
    return tx


def _new_clinician(w: World) -> IdentityKeys:
    return IdentityKeys.generate("dr-new", "clinician")


def _patient(name: str) -> IdentityKeys:
    """A patient's identity keys, named (as always) by the pseudonym it registers."""
    return IdentityKeys.generate(pseudonym_for(name), "patient")


def _rotation(old: IdentityKeys) -> RotationRequest:
    return request_rotation(old, IdentityKeys.generate(old.id, old.role))


def _request(w: World, **period: Any) -> str:
    """Commit an access request of dr_other on the patient; its id."""
    tx = b.access_request(w.dr_other, pseudonym=w.pseudonym, rights=["read"],
                          categories=["lab-results"], reason="referral", issued_at=w.clock(),
                          **period)  # fmt: skip
    w.ledger.submit(tx)
    return tx.tx_id


def _answer(w: World, decision: str, *, signer: IdentityKeys | None = None,
            grant_to: IdentityKeys | None = None, request_id: str | None = None,
            permission_id: str | None = None) -> Transaction:  # fmt: skip
    """An answer to a fresh request of dr_other (approval: after a grant to *grant_to*)."""
    request_id = request_id or _request(w)
    if decision == "approved" and permission_id is None:
        grant = _grant(w, grantee=(grant_to or w.dr_other).id)
        w.ledger.submit(grant)
        permission_id = str(grant.body["permission_id"])
    return b.answer_request(signer or w.patient, pseudonym=w.pseudonym, request_id=request_id,
                            decision=decision, permission_id=permission_id,
                            issued_at=w.clock())  # fmt: skip


def _answered_twice(w: World) -> Transaction:
    request_id = _request(w)
    w.ledger.submit(_answer(w, "declined", request_id=request_id))
    return _answer(w, "approved", request_id=request_id)


Case = tuple[str, Callable[[World], Transaction], str | None]

CASES: list[Case] = [
    # genesis
    ("genesis twice", lambda w: b.genesis(w.gateway, w.admin2.public(), issued_at=w.clock()),
     "genesis-exists"),
    # enroll
    ("enroll by admin", lambda w: b.enroll(w.admin, _new_clinician(w).public(),
                                           issued_at=w.clock()), None),
    ("enroll by clinician", lambda w: b.enroll(w.dr, _new_clinician(w).public(),
                                               issued_at=w.clock()), "wrong-role"),
    ("enroll a patient", lambda w: b.enroll(
        w.admin, IdentityKeys.generate("p-x", "patient").public(), issued_at=w.clock()),
     "wrong-role"),
    ("enroll an existing id", lambda w: b.enroll(w.admin, w.dr.public(), issued_at=w.clock()),
     "duplicate-identity"),
    # suspend
    ("suspend by admin", lambda w: b.suspend(w.admin, w.dr_other.id, "audit",
                                             issued_at=w.clock()), None),
    ("suspend by clinician", lambda w: b.suspend(w.dr, w.dr_other.id, "x", issued_at=w.clock()),
     "wrong-role"),
    ("suspend self", lambda w: b.suspend(w.admin, w.admin.id, "x", issued_at=w.clock()),
     "self-suspend"),
    ("suspend unknown", lambda w: b.suspend(w.admin, "nobody", "x", issued_at=w.clock()),
     "unknown-identity"),
    ("suspend twice", lambda w: b.suspend(w.admin, w.dr_suspended.id, "x", issued_at=w.clock()),
     "already-suspended"),
    ("suspend the ledger", lambda w: b.suspend(w.admin, "ledger", "x", issued_at=w.clock()),
     "wrong-role"),
    # reinstate
    ("reinstate by admin", lambda w: b.reinstate(w.admin, w.dr_suspended.id, "back",
                                                 issued_at=w.clock()), None),
    ("reinstate by clinician", lambda w: b.reinstate(w.dr, w.dr_suspended.id, "x",
                                                     issued_at=w.clock()), "wrong-role"),
    ("reinstate an active identity", lambda w: b.reinstate(w.admin, w.dr.id, "x",
                                                           issued_at=w.clock()), "not-suspended"),
    # rotate_keys
    ("rotate keys countersigned by admin", lambda w: b.rotate_keys(
        w.admin, _rotation(w.dr), issued_at=w.clock()), None),
    ("rotate keys without an admin", lambda w: b.rotate_keys(
        w.dr, _rotation(w.dr), issued_at=w.clock()), "wrong-role"),
    ("rotate keys of a stranger", lambda w: b.rotate_keys(
        w.admin, _rotation(IdentityKeys.generate("nobody", "clinician")), issued_at=w.clock()),
     "unknown-identity"),
    ("rotate keys replacing another key", lambda w: b.rotate_keys(
        w.admin, _rotation(IdentityKeys.generate(w.dr.id, "clinician")), issued_at=w.clock()),
     "stale-rotation"),
    # register_patient
    ("enroll a pseudonym-like id", lambda w: b.enroll(
        w.admin, IdentityKeys.generate(pseudonym_for("dr-x"), "clinician").public(),
        issued_at=w.clock()), "identity-id-form"),
    ("enroll the ledger's id", lambda w: b.enroll(
        w.admin, IdentityKeys.generate("ledger", "clinician").public(), issued_at=w.clock()),
     "reserved-identity"),
    ("register a new patient", lambda w: b.register_patient(
        _patient("cleo"), pseudonym_for("cleo"), b"k", issued_at=w.clock()), None),
    ("register a second pseudonym", lambda w: b.register_patient(
        w.patient, pseudonym_for("anna-2"), b"k", issued_at=w.clock()), None),
    ("register a taken pseudonym", lambda w: b.register_patient(
        w.patient2, w.pseudonym, b"k", issued_at=w.clock()), "duplicate-pseudonym"),
    ("register under a staff name", lambda w: b.register_patient(
        IdentityKeys.generate("dr-newhire", "patient"), pseudonym_for("newhire"), b"k",
        issued_at=w.clock()), "identity-id-form"),
    ("register under another pseudonym", lambda w: b.register_patient(
        _patient("dora"), pseudonym_for("not-dora"), b"k", issued_at=w.clock()),
     "identity-id-form"),
    ("register as the ledger", lambda w: b.register_patient(
        IdentityKeys.generate("ledger", "patient"), pseudonym_for("l"), b"k",
        issued_at=w.clock()), "reserved-identity"),
    ("register with a clinician identity", lambda w: b.register_patient(
        IdentityKeys.generate("dr-z", "clinician"), pseudonym_for("z"), b"k",
        issued_at=w.clock()), "wrong-role"),
    ("register without possession", lambda w: _forged(b.register_patient(
        _patient("eve"), pseudonym_for("eve"), b"k", issued_at=w.clock())), "bad-signature"),
    ("register an id taken by other keys", lambda w: b.register_patient(
        IdentityKeys.generate(w.patient.id, "patient"), pseudonym_for("imposter"), b"k",
        issued_at=w.clock()), "duplicate-identity"),
    # grant
    ("grant by the patient", lambda w: _grant(w), None),
    ("grant share with study", lambda w: _grant(w, rights=["read", "share"], study_id="s-1",
                                                anonymise=True), None),
    ("grant by another patient", lambda w: _grant(w, w.patient2), "not-owner"),
    ("grant by a clinician", lambda w: _grant(w, w.dr), "not-owner"),
    ("grant by the gateway", lambda w: _grant(w, w.gateway), "not-owner"),
    ("grant to an unknown grantee", lambda w: _grant(w, grantee="nobody"), "unknown-identity"),
    ("grant to oneself", lambda w: _grant(w, grantee=w.patient.id), "self-grant"),
    ("grant share without study", lambda w: _grant(w, rights=["share"]), "share-needs-study"),
    ("grant study without share", lambda w: _grant(w, study_id="s", anonymise=False),
     "study-without-share"),
    ("grant an empty interval", lambda w: _grant(w, not_after=w.clock()), "empty-interval"),
    ("grant an unknown category", lambda w: _grant(w, categories=["dental"]),
     "unknown-category"),
    ("grant an unknown right", lambda w: _grant(w, rights=["delete"]), "malformed"),
    ("grant a duplicate permission id", lambda w: _grant(w, permission_id=w.grant_id),
     "duplicate-permission"),
    ("grant on an unknown pseudonym", lambda w: _grant(w, pseudonym=pseudonym_for("nobody")),
     "unknown-pseudonym"),
    # revoke
    ("revoke by the patient", lambda w: b.revoke(w.patient, pseudonym=w.pseudonym,
                                                 permission_id=w.grant_id, issued_at=w.clock()),
     None),
    ("revoke by the grantee", lambda w: b.revoke(w.dr, pseudonym=w.pseudonym,
                                                 permission_id=w.grant_id, issued_at=w.clock()),
     "not-owner"),
    ("revoke unknown", lambda w: b.revoke(w.patient, pseudonym=w.pseudonym,
                                          permission_id="nope", issued_at=w.clock()),
     "unknown-permission"),
    ("revoke via another pseudonym", lambda w: b.revoke(
        w.patient2, pseudonym=w.pseudonym2, permission_id=w.grant_id, issued_at=w.clock()),
     "unknown-permission"),
    # key_share
    ("key share by the patient", lambda w: b.key_share(
        w.patient, pseudonym=w.pseudonym, grantee=w.dr.id, sealed_key=b"sealed",
        issued_at=w.clock()), None),
    ("key share by a clinician", lambda w: b.key_share(
        w.dr, pseudonym=w.pseudonym, grantee=w.dr.id, sealed_key=b"sealed",
        issued_at=w.clock()), "not-owner"),
    ("key share to nobody", lambda w: b.key_share(
        w.patient, pseudonym=w.pseudonym, grantee="nobody", sealed_key=b"s",
        issued_at=w.clock()), "unknown-identity"),
    ("key share scoped within the grant", lambda w: _scoped_share(w, ["lab-results/2026-03"]),
     None),
    ("key share scoped to another category", lambda w: _scoped_share(
        w, ["lab-results/2026-03", "radiation-dose/2026-03"]), "share-outside-grant"),
    ("key share scoped past the grant's end", lambda w: _scoped_share(
        w, ["lab-results/2026-03", "lab-results/2026-04"]), "share-outside-grant"),
    ("key share scoped to a writer without read", lambda w: _scoped_share(
        w, ["lab-results/2026-03"], w.system.id), "share-outside-grant"),
    ("key share scoped to an unknown category", lambda w: _scoped_share(
        w, ["dental/2026-03"]), "unknown-category"),
    ("key share scoped to a bad month", lambda w: _scoped_share(
        w, ["lab-results/2026-13"]), "malformed"),
    ("key share scoped unsorted", lambda w: _scoped_share(
        w, ["lab-results/2026-03", "lab-results/2026-02"]), "malformed"),
    # publish_keys
    ("publish keys by the patient", lambda w: _publish(w, [("lab-results", "2026-03", KEY_A)]),
     None),
    ("publish keys again, the same", lambda w: _publish(
        w, [("lab-results", "2026-03", KEY_A)], first=[("lab-results", "2026-03", KEY_A)]), None),
    ("publish keys conflicting", lambda w: _publish(
        w, [("lab-results", "2026-03", KEY_B)], first=[("lab-results", "2026-03", KEY_A)]),
     "key-already-published"),
    ("publish keys by another patient", lambda w: _publish(
        w, [("lab-results", "2026-03", KEY_A)], actor=w.patient2), "not-owner"),
    ("publish keys by a clinician", lambda w: _publish(
        w, [("lab-results", "2026-03", KEY_A)], actor=w.dr), "not-owner"),
    ("publish keys in an unknown category", lambda w: _publish(
        w, [("dental", "2026-03", KEY_A)]), "unknown-category"),
    ("publish keys for a bad month", lambda w: _publish(
        w, [("lab-results", "2026-3", KEY_A)]), "malformed"),
    ("publish keys of the wrong size", lambda w: _publish(
        w, [("lab-results", "2026-03", b"short")]), "malformed"),
    ("publish keys, too many", lambda w: _publish(
        w, [("lab-results", f"{2000 + n // 12}-{n % 12 + 1:02d}", KEY_A) for n in range(129)]),
     "malformed"),
    # record
    ("record by a writer", lambda w: w.record_tx(w.dr, issued_at=w.clock()), None),
    ("record by the patient", lambda w: w.record_tx(w.patient, category="radiation-dose",
                                                    issued_at=w.clock()), None),
    ("record outside the granted category", lambda w: w.record_tx(
        w.dr, category="radiation-dose", issued_at=w.clock()), "not-granted"),
    ("record without any grant", lambda w: w.record_tx(w.dr_other, issued_at=w.clock()),
     "not-granted"),
    ("record by a suspended clinician", lambda w: w.record_tx(w.dr_suspended,
                                                              issued_at=w.clock()), "suspended"),
    ("record for a system by the gateway", lambda w: w.record_tx(
        w.gateway, on_behalf_of=w.system.id, issued_at=w.clock()), None),
    ("record for an ungranted system", lambda w: w.record_tx(
        w.gateway, on_behalf_of=w.dr_other.id, issued_at=w.clock()), "not-granted"),
    ("record on behalf, not by the gateway", lambda w: w.record_tx(
        w.dr, on_behalf_of=w.system.id, issued_at=w.clock()), "wrong-role"),
    ("record for a suspended system", lambda w: w.record_tx(
        w.gateway, on_behalf_of=w.dr_suspended.id, issued_at=w.clock()), "suspended"),
    ("record in an unknown category", lambda w: w.record_tx(w.dr, category="dental",
                                                            issued_at=w.clock()),
     "unknown-category"),
    ("record for an unknown pseudonym", lambda w: w.record_tx(
        w.dr, pseudonym=pseudonym_for("x"), issued_at=w.clock()), "unknown-pseudonym"),
    ("record with a taken id", lambda w: w.record_tx(w.dr, record_id=w.record_id,
                                                     issued_at=w.clock()), "duplicate-record"),
    ("record with a bad hash", lambda w: w.record_tx(w.dr, body_sha256="XY",
                                                     issued_at=w.clock()), "malformed"),
    ("record with no locators", lambda w: w.record_tx(w.dr, locators=[], issued_at=w.clock()),
     "malformed"),
    # access
    ("access by the gateway", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="body", pseudonym=w.pseudonym, decision="allowed",
        reason="read right", record_id=w.record_id, at=w.clock(), issued_at=w.clock()), None),
    ("access denied by the gateway", lambda w: b.access(
        w.gateway, actor=w.dr_other.id, action="list", pseudonym=w.pseudonym,
        decision="denied", reason="no permission", category="lab-results", at=w.clock(),
        issued_at=w.clock()), None),
    ("access signed by a clinician", lambda w: b.access(
        w.dr, actor=w.dr.id, action="body", pseudonym=w.pseudonym, decision="allowed",
        reason="x", at=w.clock(), issued_at=w.clock()), "wrong-role"),
    ("access with a bad decision", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="body", pseudonym=w.pseudonym, decision="maybe",
        reason="x", at=w.clock(), issued_at=w.clock()), "malformed"),
    ("access refused a write, naming the patient", lambda w: b.access(
        w.gateway, actor=w.dr_other.id, action="commit_record", pseudonym=w.pseudonym,
        decision="denied", reason="no write right", category="lab-results", at=w.clock(),
        issued_at=w.clock()), None),
    ("access refused a login, naming no patient", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="login", pseudonym=None, decision="denied",
        reason="bad signature", at=w.clock(), issued_at=w.clock()), None),
    ("access read naming no patient", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="list", pseudonym=None, decision="denied",
        reason="x", at=w.clock(), issued_at=w.clock()), "malformed"),
    ("access refusal with a null pseudonym", lambda w: b.sign(w.gateway, "access", {
        "actor": w.dr.id, "action": "grant", "pseudonym": None, "decision": "denied",
        "reason": "x", "at": format_time(w.clock())}, issued_at=w.clock()), "malformed"),
    ("access refusal recorded as allowed", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="grant", pseudonym=w.pseudonym, decision="allowed",
        reason="x", at=w.clock(), issued_at=w.clock()), "malformed"),
    ("access with an unknown action", lambda w: b.access(
        w.gateway, actor=w.dr.id, action="teleport", pseudonym=None, decision="denied",
        reason="x", at=w.clock(), issued_at=w.clock()), "malformed"),
    ("access refusal of an unknown actor", lambda w: b.access(
        w.gateway, actor="nobody-known", action="login", pseudonym=None, decision="denied",
        reason="x", at=w.clock(), issued_at=w.clock()), "unknown-identity"),
    # access_request
    ("access request by a clinician", lambda w: b.access_request(
        w.dr_other, pseudonym=w.pseudonym, rights=["read"], categories="all",
        reason="referral", issued_at=w.clock()), None),
    ("access request by a patient", lambda w: b.access_request(
        w.patient2, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="x",
        issued_at=w.clock()), "wrong-role"),
    ("access request by a suspended clinician", lambda w: b.access_request(
        w.dr_suspended, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="x",
        issued_at=w.clock()), "suspended"),
    ("access request for an unknown pseudonym", lambda w: b.access_request(
        w.dr, pseudonym=pseudonym_for("x"), rights=["read"], categories="all", reason="x",
        issued_at=w.clock()), "unknown-pseudonym"),
    ("access request for a period", lambda w: b.access_request(
        w.dr, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="x",
        not_before=w.clock(), not_after=w.clock() + HOUR, issued_at=w.clock()), None),
    ("access request for an empty period", lambda w: b.access_request(
        w.dr, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="x",
        not_before=w.clock(), not_after=w.clock(), issued_at=w.clock()), "empty-interval"),
    ("access request with half a period", lambda w: b.access_request(
        w.dr, pseudonym=w.pseudonym, rights=["read"], categories="all", reason="x",
        not_after=w.clock() + HOUR, issued_at=w.clock()), "half-period"),
    # answer_request
    ("answer request: declined by the patient", lambda w: _answer(w, "declined"), None),
    ("answer request: approved with a grant to the requester",
     lambda w: _answer(w, "approved"), None),
    ("answer request: approved without a grant", lambda w: b.answer_request(
        w.patient, pseudonym=w.pseudonym, request_id=_request(w), decision="approved",
        issued_at=w.clock()), "approval-needs-grant"),
    ("answer request: approved with a grant to someone else",
     lambda w: _answer(w, "approved", grant_to=w.dr), "grant-does-not-match"),
    ("answer request: declined naming a grant",
     lambda w: _answer(w, "declined", permission_id=w.grant_id), "decline-with-grant"),
    ("answer request: twice", _answered_twice, "already-answered"),
    ("answer request: by another patient", lambda w: b.answer_request(
        w.patient2, pseudonym=w.pseudonym, request_id=_request(w), decision="declined",
        issued_at=w.clock()), "not-owner"),
    ("answer request: by the requester", lambda w: _answer(w, "declined", signer=w.dr_other),
     "not-owner"),
    ("answer request: unknown request", lambda w: _answer(w, "declined", request_id="nope"),
     "unknown-request"),
    ("answer request: another decision", lambda w: _answer(w, "maybe"), "malformed"),
    # rekey
    ("rekey by the patient", lambda w: b.rekey(w.patient, record_id=w.record_id,
                                               capsule_sha256="ef" * 32, issued_at=w.clock()),
     None),
    ("rekey by the uploader", lambda w: b.rekey(w.dr, record_id=w.record_id,
                                                capsule_sha256="ef" * 32, issued_at=w.clock()),
     "not-owner"),
    ("rekey an unknown record", lambda w: b.rekey(w.patient, record_id="nope",
                                                  capsule_sha256="ef" * 32,
                                                  issued_at=w.clock()), "unknown-record"),
    ("rekey an erased record", lambda w: _after_erasure(w, b.rekey(
        w.patient, record_id=w.record_id, capsule_sha256="ef" * 32, issued_at=w.clock())),
     "already-erased"),
    # erase
    ("erase a record by its patient", lambda w: _erase(w, w.patient), None),
    ("erase every record by the patient", lambda w: _erase(w, w.patient, record_id=None),
     None),
    ("erase by an admin with a legal reason", lambda w: _erase(
        w, w.admin, reason="court order 2026/118, art. 17 GDPR"), None),
    ("erase by an admin without a reason", lambda w: _erase(w, w.admin), "reason-required"),
    ("erase by an admin with a blank reason", lambda w: _erase(w, w.admin, reason="  "),
     "malformed"),
    ("erase with an overlong reason", lambda w: _erase(w, w.admin, reason="x" * 501),
     "malformed"),
    ("erase another patient's record", lambda w: _erase(w, w.patient2), "not-owner"),
    ("erase by a clinician", lambda w: _erase(w, w.dr, reason="asked to"), "not-owner"),
    ("erase a record under another pseudonym", lambda w: _erase(
        w, w.patient2, pseudonym=w.pseudonym2), "unknown-record"),
    ("erase a patient without records", lambda w: _erase(
        w, w.patient2, pseudonym=w.pseudonym2, record_id=None), "nothing-to-erase"),
    ("erase an unknown pseudonym", lambda w: _erase(w, w.admin, pseudonym="ee" * 32,
                                                    reason="order"), "unknown-pseudonym"),
    ("erase in an unknown scope", lambda w: b.sign(w.patient, "erase", {
        "pseudonym": w.pseudonym, "scope": "everything"}, issued_at=w.clock()), "malformed"),
    ("erase a patient naming a record", lambda w: b.sign(w.patient, "erase", {
        "pseudonym": w.pseudonym, "scope": "patient", "record_id": w.record_id},
        issued_at=w.clock()), "malformed"),
    ("erase a record twice", lambda w: _after_erasure(w, _erase(w, w.patient)),
     "already-erased"),
    ("erase every record when all are erased", lambda w: _after_erasure(
        w, _erase(w, w.patient, record_id=None)), "already-erased"),
    # break_glass_policy, break_glass, break_glass_review (tests/ledger/consent_cases.py)
    ("break glass policy by the patient", lambda w: cc.policy(w), None),
    ("break glass policy by a clinician", lambda w: cc.policy(w, w.dr), "not-owner"),
    ("break glass policy naming a clinician", lambda w: cc.policy(
        w, emergency_identity=w.dr.id), "wrong-role"),
    ("break glass policy naming no hospital", lambda w: cc.policy(
        w, emergency_identity=w.system.id), "not-of-hospital"),
    ("break glass policy longer than a day", lambda w: cc.policy(w, max_minutes=24 * 60 + 1),
     "malformed"),
    ("break glass policy letting auditors in", lambda w: cc.policy(w, roles=["auditor"]),
     "malformed"),
    ("break glass act by a clinician of the hospital", lambda w: cc.act(w), None),
    ("break glass act without opt-in", lambda w: cc.act(w, opted_in=False), "not-opted-in"),
    ("break glass act by a clinician of another hospital", lambda w: cc.act(
        w, invoker=("dr-er@elsewhere", "clinician")), "not-of-hospital"),
    ("break glass act by a clinician of no hospital", lambda w: cc.act(
        w, invoker=("dr-er", "clinician")), "not-of-hospital"),
    ("break glass act by an auditor", lambda w: cc.act(
        w, invoker=("audit@general", "auditor")), "wrong-role"),
    ("break glass act past the policy's maximum", lambda w: cc.act(w, minutes=61),
     "beyond-policy"),
    ("break glass act with a reason outside the list", lambda w: cc.act(
        w, reason="curiosity"), "malformed"),
    ("break glass act on an unknown patient", lambda w: cc.act(
        w, pseudonym=pseudonym_for("nobody")), "unknown-pseudonym"),
    ("break glass review by an auditor", lambda w: cc.review(w), None),
    ("break glass review by a clinician", lambda w: cc.review(w, w.dr), "wrong-role"),
    ("break glass review twice", lambda w: cc.review(w, twice=True), "already-reviewed"),
    # study_export
    ("study export rewrapped", lambda w: cc.export(w)[0], None),
    ("study export anonymised", lambda w: cc.export(
        w, grant={"anonymise": True}, anonymise=True, body_sha256="ee" * 32,
        locators=["local:blobs/ee/" + "ee" * 32],
        created_at="2029-03-01T00:00:00.000000Z")[0], None),
    ("study export not anonymised though the grant says so", lambda w: cc.export(
        w, grant={"anonymise": True}, anonymise=False)[0], "not-granted"),
    ("study export by someone else", lambda w: cc.export(w, exporter=w.dr_other)[0],
     "not-granted"),
    ("study export after the right ended", lambda w: cc.export(w, ended=True)[0],
     "not-granted"),
    ("study export before the right begins", lambda w: cc.export(
        w, grant={"not_before": w.clock() + HOUR, "not_after": w.clock() + 2 * HOUR})[0],
     "not-granted"),
    ("study export of a category outside the right", lambda w: cc.export(
        w, grant={"categories": ["radiation-dose"]})[0], "not-granted"),
    ("study export to an unknown study", lambda w: cc.export(w, study_id="study-y")[0],
     "unknown-study"),
    ("study export under another pseudonym", lambda w: cc.export(
        w, study_pseudonym="7a" * 32)[0], "malformed"),
    ("study export changing the body of a rewrap", lambda w: cc.export(
        w, body_sha256="ee" * 32)[0], "malformed"),
    ("study export without study terms", lambda w: cc.export(
        w, grant={"study_pseudonym": None, "study_secret": None})[0], "no-study-pseudonym"),
    # every type: wrong signer, unknown signer, tampering, replay, clock
    ("forged signature", lambda w: _forged(_grant(w)), "bad-signature"),
    ("body edited after signing", lambda w: _edited(_grant(w), grantee=w.dr.id),
     "bad-signature"),
    ("signer field swapped", lambda w: Transaction("grant", _grant(w).body, w.patient2.id,
                                                   _grant(w).signature), "bad-signature"),
    ("unknown signer", lambda w: _grant(w, IdentityKeys.generate("ghost", "patient")),
     "unknown-signer"),
    ("unknown body field", lambda w: b.sign(w.admin, "suspend", {
        "identity_id": w.dr_other.id, "reason": "x", "colour": "red"}, issued_at=w.clock()),
     "malformed"),
    ("issued in the future", lambda w: _grant(w, issued_at=w.clock() + HOUR), "from-the-future"),
    ("issued slightly ahead", lambda w: _grant(w, issued_at=w.clock() + timedelta(minutes=4)),
     None),
    ("ledger key posing as admin", lambda w: b.enroll(
        LedgerSigner(SigningKey.generate()), _new_clinician(w).public(), issued_at=w.clock()),
     "bad-signature"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "expected"), [pytest.param(m, e, id=n) for n, m, e in CASES])
def test_rule(world: World, make: Callable[[World], Transaction], expected: str | None) -> None:
    tx = make(world)
    if expected is None:
        receipt = world.ledger.submit(tx)
        receipt.verify(world.ledger.verify_key, tx)
    else:
        with pytest.raises(RuleViolation) as caught:
            world.ledger.submit(tx)
        assert caught.value.code == expected, str(caught.value)
        assert str(caught.value)  # an actionable message, never empty


_CASE_PREFIX = {
    "genesis": "genesis ",
    "enroll": "enroll ",
    "suspend": "suspend ",
    "register_patient": "register ",
    "grant": "grant ",
    "revoke": "revoke ",
    "key_share": "key share ",
    "record": "record ",
    "access": "access ",
    "access_request": "access request ",
    "rekey": "rekey ",
    "publish_keys": "publish keys ",
    "erase": "erase ",
    "reinstate": "reinstate ",
    "rotate_keys": "rotate keys ",
    "answer_request": "answer request",
    "break_glass_policy": "break glass policy ",
    "break_glass": "break glass act ",
    "break_glass_review": "break glass review ",
    "study_export": "study export ",
}


@pytest.mark.parametrize("tx_type", TX_TYPES)
def test_the_table_covers_each_type_allowed_and_denied(tx_type: str) -> None:
    prefix = _CASE_PREFIX[tx_type]
    outcomes = {expected is None for name, _, expected in CASES if name.startswith(prefix)}
    # The genesis entry can be allowed only once, by the world fixture itself.
    assert outcomes == ({False} if tx_type == "genesis" else {True, False})


def test_a_replayed_transaction_is_rejected(world: World) -> None:
    tx = _grant(world)
    world.ledger.submit(tx)
    with pytest.raises(RuleViolation, match="already committed") as caught:
        world.ledger.submit(tx)
    assert caught.value.code == "replayed"


def test_a_replay_is_rejected_after_reopening(world: World, database_url: str) -> None:
    tx = _grant(world)
    world.ledger.submit(tx)
    key = world.ledger.signer.signing_key
    with (
        Ledger.open(database_url, key, clock=world.clock) as again,
        pytest.raises(RuleViolation, match="already committed"),
    ):
        again.submit(tx)


def test_suspended_identity_can_do_nothing(world: World) -> None:
    w = world
    assert w.ledger.is_suspended(w.dr_suspended.id)
    attempts = [
        w.record_tx(w.dr_suspended, issued_at=w.clock()),
        b.access_request(w.dr_suspended, pseudonym=w.pseudonym, rights=["read"],
                         categories="all", reason="x", issued_at=w.clock()),
        b.enroll(w.dr_suspended, _new_clinician(w).public(), issued_at=w.clock()),
    ]  # fmt: skip
    for tx in attempts:
        with pytest.raises(RuleViolation) as caught:
            w.ledger.submit(tx)
        assert caught.value.code == "suspended"
    assert not w.ledger.check(w.dr_suspended.id, "read", w.pseudonym, "lab-results")


def test_suspending_a_writer_stops_its_next_record(world: World) -> None:
    w = world
    w.ledger.submit(w.record_tx(w.dr, issued_at=w.clock()))
    w.ledger.submit(b.suspend(w.admin2, w.dr.id, "investigation", issued_at=w.clock()))
    with pytest.raises(RuleViolation, match="suspended"):
        w.ledger.submit(w.record_tx(w.dr, issued_at=w.clock()))
    assert w.ledger.check(w.dr.id, "read", w.pseudonym, "lab-results").reason.endswith(
        "is suspended"
    )


def test_a_suspended_patient_cannot_grant(world: World) -> None:
    w = world
    w.ledger.submit(b.suspend(w.admin, w.patient.id, "deceased", issued_at=w.clock()))
    with pytest.raises(RuleViolation) as caught:
        w.ledger.submit(_grant(w))
    assert caught.value.code == "suspended"
