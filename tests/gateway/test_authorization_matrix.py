"""Every route, for every role, in every state of a clinician's permission, as expected.

The permission under test is the clinician's read+write grant on the patient's lab-results;
the record read is a lab-results record. States: none, not yet valid, valid, expired,
revoked, other category (radiation-dose only), and suspended (valid grant, identity
suspended after it logged in). A route added to the gateway without a row here fails
`test_every_route_has_a_row`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from envelope import IdentityKeys, PatientKeys, b64encode
from envelope.scoped import scoped_private_key
from gateway import Settings
from ledger.wire import builders
from ledger.wire.rotation import request_rotation
from tests.gateway.helpers import World, signed_token_request, tx_json
from tests.gateway.scenario import PDF

ROLES = ("anonymous", "owner", "other_patient", "clinician", "system", "auditor", "admin")
STATES = (
    "none",
    "not_yet_valid",
    "valid",
    "expired",
    "revoked",
    "other_category",
    "suspended",
)
CATEGORY = "lab-results"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Hundreds of logins from one test client: the rate limit has its own tests.
    return Settings(data_dir=tmp_path / "data", auth_rate_limit=1_000_000)


@dataclass
class Ctx:
    world: World
    state: str
    actors: dict[str, IdentityKeys]
    owner: PatientKeys
    record: dict[str, Any]
    blob: dict[str, Any]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> httpx.Client:
        client: httpx.Client = self.world.client
        return client

    @property
    def pseudonym(self) -> str:
        return self.owner.pseudonym

    def headers(self, role: str) -> dict[str, str]:
        if role == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def keys(self, role: str) -> IdentityKeys:
        if role == "anonymous":
            return IdentityKeys.generate("nobody-at-all", "clinician")
        return self.actors[role]

    def now(self) -> Any:
        return self.world.clock()


def _setup(world: World, state: str) -> Ctx:
    clock = world.clock
    owner = world.register_patient("Owner Patient")
    other = world.register_patient("Other Patient")
    clinician = world.enroll("dr-matrix", "clinician")
    system = world.enroll("his-matrix", "system")
    auditor = world.enroll("auditor-matrix", "auditor")
    # Receives the grants and shares the mutating rows make, so that no row changes what
    # the roles under test may do.
    bystander = world.enroll("bystander", "clinician")
    actors = {
        "owner": owner.identity,
        "other_patient": other.identity,
        "clinician": clinician,
        "system": system,
        "auditor": auditor,
        "admin": world.admin,
        "bystander": bystander,
    }
    world.grant(owner, system, ["write"], [CATEGORY])
    now = clock()
    hour, day = timedelta(hours=1), timedelta(days=1)
    if state in ("valid", "suspended", "revoked"):
        permission = world.grant(owner, clinician, ["read", "write"], [CATEGORY])
        if state == "revoked":
            world.revoke(owner, permission)
    elif state == "not_yet_valid":
        world.grant(
            owner, clinician, ["read", "write"], [CATEGORY],
            not_before=now + hour, not_after=now + day,
        )  # fmt: skip
    elif state == "expired":
        world.grant(
            owner, clinician, ["read", "write"], [CATEGORY],
            not_before=now - 2 * day, not_after=now - day,
        )  # fmt: skip
    elif state == "other_category":
        world.grant(owner, clinician, ["read", "write"], ["radiation-dose"])
    world.grant(owner, bystander, ["read"], [CATEGORY])
    if world.grant_scope(owner, clinician):  # a share carries only what grants cover
        world.share_key(owner, clinician)
    record = world.ingest_pdf(system, owner, CATEGORY, PDF)
    blob = world.client.post(
        "/v1/blobs",
        params={"pseudonym": owner.pseudonym, "category": CATEGORY},
        content=b"sealed body bytes for the matrix",
        headers={**world.headers(system), "Content-Type": "application/octet-stream"},
    ).json()
    tokens = {
        role: world.headers(keys)["Authorization"].split()[1] for role, keys in actors.items()
    }
    if state == "suspended":
        world.suspend(clinician)
    return Ctx(world, state, actors, owner, record, blob, tokens)


# --- how each route is called by a role ------------------------------------------------

Call = Callable[[Ctx, str], httpx.Response]


def _get(path: Callable[[Ctx], str], **params: str) -> Call:
    return lambda ctx, role: ctx.client.get(path(ctx), params=params, headers=ctx.headers(role))


def _post_tx(path: Callable[[Ctx], str], build: Callable[[Ctx, str], Any]) -> Call:
    def call(ctx: Ctx, role: str) -> httpx.Response:
        tx = build(ctx, role)
        return ctx.client.post(path(ctx), json=tx_json(tx), headers=ctx.headers(role))

    return call


def _token(ctx: Ctx, role: str) -> httpx.Response:
    keys = ctx.keys(role)
    challenge = ctx.client.post("/v1/auth/challenge", json={"identity_id": keys.id}).json()
    return ctx.client.post("/v1/auth/token", json=signed_token_request(keys, challenge))


def _register(ctx: Ctx, role: str) -> httpx.Response:
    patient = PatientKeys.generate({"name": f"new {role} {ctx.now().isoformat()}"})
    tx = builders.register_patient(
        patient.identity,
        patient.pseudonym,
        patient.patient_key.record_public_key().to_bytes(),
        issued_at=ctx.now(),
    )
    return ctx.client.post("/v1/patients", json=tx_json(tx), headers=ctx.headers(role))


_counter = iter(range(1_000_000))


def _fresh(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def _enroll_tx(ctx: Ctx, role: str) -> Any:
    new = IdentityKeys.generate(_fresh("enrolled"), "clinician")
    return builders.enroll(ctx.keys(role), new.public(), issued_at=ctx.now())


def _suspend(ctx: Ctx, role: str) -> httpx.Response:
    target = ctx.world.enroll(_fresh("target"), "clinician")
    tx = builders.suspend(ctx.keys(role), target.id, "matrix", issued_at=ctx.now())
    return ctx.client.post(
        f"/v1/identities/{target.id}/suspend", json=tx_json(tx), headers=ctx.headers(role)
    )


def _reinstate(ctx: Ctx, role: str) -> httpx.Response:
    target = ctx.world.enroll(_fresh("suspended"), "clinician")
    ctx.world.suspend(target)
    tx = builders.reinstate(ctx.keys(role), target.id, "matrix", issued_at=ctx.now())
    return ctx.client.post(
        f"/v1/identities/{target.id}/reinstate", json=tx_json(tx), headers=ctx.headers(role)
    )


def _rotate_keys(ctx: Ctx, role: str) -> httpx.Response:
    target = ctx.world.enroll(_fresh("rotating"), "clinician")
    request = request_rotation(target, IdentityKeys.generate(target.id, target.role))
    tx = builders.rotate_keys(ctx.keys(role), request, issued_at=ctx.now())
    return ctx.client.post(
        f"/v1/identities/{target.id}/rotate-keys", json=tx_json(tx), headers=ctx.headers(role)
    )


def _grant_tx(ctx: Ctx, role: str) -> Any:
    now = ctx.now()
    return builders.grant(
        ctx.keys(role),
        pseudonym=ctx.pseudonym,
        grantee=ctx.actors["bystander"].id,
        rights=["read"],
        categories=[CATEGORY],
        not_before=now,
        not_after=now + timedelta(hours=1),
        issued_at=now,
    )


def _revoke(ctx: Ctx, role: str) -> httpx.Response:
    permission = ctx.world.grant(ctx.owner, ctx.actors["bystander"], ["read"], [CATEGORY])
    tx = builders.revoke(
        ctx.keys(role), pseudonym=ctx.pseudonym, permission_id=permission, issued_at=ctx.now()
    )
    return ctx.client.post(
        f"/v1/permissions/{permission}/revoke", json=tx_json(tx), headers=ctx.headers(role)
    )


def _key_share_tx(ctx: Ctx, role: str) -> Any:
    return builders.key_share(
        ctx.keys(role),
        pseudonym=ctx.pseudonym,
        grantee=ctx.actors["bystander"].id,
        sealed_key=b"\x01" * 1490,
        scope=[(CATEGORY, ctx.now().strftime("%Y-%m"))],
        issued_at=ctx.now(),
    )


def _publish_keys_tx(ctx: Ctx, role: str) -> Any:
    key = scoped_private_key(ctx.owner.patient_key, CATEGORY, "2099-01")
    return builders.publish_keys(
        ctx.keys(role),
        pseudonym=ctx.pseudonym,
        keys=[(CATEGORY, "2099-01", key.public_key().to_bytes())],
        issued_at=ctx.now(),
    )


def _access_request_tx(ctx: Ctx, role: str) -> Any:
    return builders.access_request(
        ctx.keys(role),
        pseudonym=ctx.pseudonym,
        rights=["read"],
        categories=[CATEGORY],
        reason="follow-up",
        issued_at=ctx.now(),
    )


def _upload_blob(ctx: Ctx, role: str) -> httpx.Response:
    return ctx.client.post(
        "/v1/blobs",
        params={"pseudonym": ctx.pseudonym, "category": CATEGORY},
        content=b"another sealed body " + role.encode(),
        headers={**ctx.headers(role), "Content-Type": "application/octet-stream"},
    )


def _commit_record(ctx: Ctx, role: str) -> httpx.Response:
    capsule = b'{"capsule":"' + _fresh("c").encode() + b'"}'
    tx = builders.record(
        ctx.keys(role),
        pseudonym=ctx.pseudonym,
        category=CATEGORY,
        body_sha256=ctx.blob["sha256"],
        size=ctx.blob["size"],
        locators=ctx.blob["locators"],
        capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        content_type="application/pdf",
        created_at=ctx.now(),
        issued_at=ctx.now(),
    )
    return ctx.client.post(
        "/v1/records",
        json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
        headers=ctx.headers(role),
    )


def _ingest(ctx: Ctx, role: str) -> httpx.Response:
    return ctx.client.post(
        "/v1/documents",
        params={"pseudonym": ctx.pseudonym, "category": CATEGORY, "filename": "m.pdf"},
        content=PDF,
        headers={**ctx.headers(role), "Content-Type": "application/pdf"},
    )


def _fresh_record(ctx: Ctx) -> str:
    """A new record of the owner, so that an erasure leaves the others' rows unchanged."""
    record = ctx.world.ingest_pdf(ctx.actors["system"], ctx.owner, CATEGORY, PDF)
    return str(record["record_id"])


def _erase_record(ctx: Ctx, role: str) -> httpx.Response:
    record_id = _fresh_record(ctx)
    tx = builders.erase(ctx.keys(role), pseudonym=ctx.pseudonym, record_id=record_id,
                        reason="matrix order 1", issued_at=ctx.now())  # fmt: skip
    return ctx.client.post(
        f"/v1/records/{record_id}/erase", json=tx_json(tx), headers=ctx.headers(role)
    )


def _erase_patient(ctx: Ctx, role: str) -> httpx.Response:
    _fresh_record(ctx)  # something is left to erase after an earlier role's erasure
    tx = builders.erase(ctx.keys(role), pseudonym=ctx.pseudonym, reason="matrix order 2",
                        issued_at=ctx.now())  # fmt: skip
    return ctx.client.post(
        f"/v1/patients/{ctx.pseudonym}/erase", json=tx_json(tx), headers=ctx.headers(role)
    )


def _answer_request(ctx: Ctx, role: str) -> httpx.Response:
    """A fresh request by the bystander, declined by *role*."""
    ask = builders.access_request(
        ctx.actors["bystander"], pseudonym=ctx.pseudonym, rights=["read"],
        categories=[CATEGORY], reason="follow-up", issued_at=ctx.now(),
    )  # fmt: skip
    filed = ctx.client.post(
        "/v1/access-requests", json=tx_json(ask), headers=ctx.headers("bystander")
    )
    assert filed.status_code == 201, filed.text
    tx = builders.answer_request(
        ctx.keys(role), pseudonym=ctx.pseudonym, request_id=ask.tx_id, decision="declined",
        issued_at=ctx.now(),
    )  # fmt: skip
    return ctx.client.post(
        f"/v1/access-requests/{ask.tx_id}/answer", json=tx_json(tx), headers=ctx.headers(role)
    )


def _add_webhook(ctx: Ctx, role: str) -> httpx.Response:
    return ctx.client.post(
        "/v1/notifications/webhooks",
        json={"url": f"https://hooks.example.org/{role}"},
        headers=ctx.headers(role),
    )


def _remove_webhook(ctx: Ctx, role: str) -> httpx.Response:
    added = _add_webhook(ctx, role)
    endpoint = added.json().get("endpoint_id", "none") if added.status_code == 201 else "none"
    return ctx.client.delete(f"/v1/notifications/webhooks/{endpoint}", headers=ctx.headers(role))


def _set_contact(ctx: Ctx, role: str) -> httpx.Response:
    return ctx.client.put(
        "/v1/notifications/contact",
        json={"email": "someone@mail.example.org"},
        headers=ctx.headers(role),
    )


def _policy_tx(ctx: Ctx, role: str) -> Any:
    emergency = ctx.world.enroll(_fresh("emergency") + "@matrix", "system")
    now = ctx.now()
    return builders.break_glass_policy(
        ctx.keys(role), pseudonym=ctx.pseudonym, emergency_identity=emergency.id,
        categories=[CATEGORY], roles=["clinician"], max_minutes=30, not_before=now,
        not_after=now + timedelta(days=1), issued_at=now,
    )  # fmt: skip


def _break_glass_tx(ctx: Ctx, role: str) -> Any:
    """An act on a patient who never opted in: refused whoever asks."""
    return builders.break_glass(
        ctx.keys(role), pseudonym=ctx.pseudonym, emergency_identity="emergency@matrix",
        reason="unconscious-patient", details="matrix", minutes=10, issued_at=ctx.now(),
    )  # fmt: skip


def _review(ctx: Ctx, role: str) -> httpx.Response:
    tx = builders.break_glass_review(
        ctx.keys(role), session_id="no-such-session", verdict="accepted", note="matrix",
        issued_at=ctx.now(),
    )  # fmt: skip
    return ctx.client.post(
        "/v1/break-glass/no-such-session/review", json=tx_json(tx), headers=ctx.headers(role)
    )


def _export_body(ctx: Ctx, role: str) -> httpx.Response:
    return ctx.client.post(
        "/v1/study-exports/bodies",
        params={"permission_id": "no-such-permission"},
        content=b"an anonymised copy",
        headers={**ctx.headers(role), "Content-Type": "application/octet-stream"},
    )


def _export(ctx: Ctx, role: str) -> httpx.Response:
    capsule = b"a capsule for the study"
    record = ctx.record
    tx = builders.study_export(
        ctx.keys(role), permission_id="no-such-permission", study_id="study-matrix",
        study_pseudonym="5e" * 32, source_record_id=record["record_id"], anonymise=False,
        category=CATEGORY, created_at=record["created_at"], content_type="application/pdf",
        body_sha256=record["body_sha256"], size=record["size"], locators=record["locators"],
        capsule_sha256=hashlib.sha256(capsule).hexdigest(), issued_at=ctx.now(),
    )  # fmt: skip
    return ctx.client.post(
        "/v1/study-exports",
        json={"transaction": tx_json(tx), "capsule": b64encode(capsule)},
        headers=ctx.headers(role),
    )


def _rekey(ctx: Ctx, role: str) -> httpx.Response:
    """A rekey batch signed by *role* for the owner's record. Only the owner gets past the
    authorization; its capsule is no rewrap of the record's, so the owner's answer is 422."""
    capsule = b'{"capsule":"' + _fresh("r").encode() + b'"}'
    tx = builders.rekey(
        ctx.keys(role),
        record_id=ctx.record["record_id"],
        capsule_sha256=hashlib.sha256(capsule).hexdigest(),
        issued_at=ctx.now(),
    )
    return ctx.client.post(
        f"/v1/patients/{ctx.pseudonym}/rekey",
        json={"items": [{"transaction": tx_json(tx), "capsule": b64encode(capsule)}]},
        headers=ctx.headers(role),
    )


def _patient_path(suffix: str) -> Callable[[Ctx], str]:
    return lambda ctx: f"/v1/patients/{ctx.pseudonym}{suffix}"


def _record_path(suffix: str) -> Callable[[Ctx], str]:
    return lambda ctx: f"/v1/records/{ctx.record['record_id']}{suffix}"


def _opened_body(ctx: Ctx, role: str) -> httpx.Response:
    """The body under the ticket of *role*'s own open (a refused open has none)."""
    opened = ctx.client.get(_record_path("/open")(ctx), headers=ctx.headers(role))
    ticket = opened.json()["ticket"] if opened.status_code == 200 else "no-ticket"
    return ctx.client.get(
        _record_path("/open/body")(ctx), params={"ticket": ticket}, headers=ctx.headers(role)
    )


# --- what each role should get -----------------------------------------------------------

Expect = Callable[[str, str], int]


def public(status: int = 200) -> Expect:
    return lambda role, state: status


def authenticated(rule: Expect) -> Expect:
    """401 without a token, 403 once suspended, otherwise *rule*."""

    def expect(role: str, state: str) -> int:
        if role == "anonymous":
            return 401
        if role == "clinician" and state == "suspended":
            return 403
        return rule(role, state)

    return expect


def roles(ok: int, *allowed: str) -> Expect:
    return authenticated(lambda role, state: ok if role in allowed else 403)


def permitted(
    ok: int, owner: int | None = None, any_category: bool = False, **fixed: int
) -> Expect:
    """The clinician only with its grant valid now; the owner always; others 403.

    With *any_category* a read right valid now on any category is enough (key shares: K
    alone opens nothing, the capsules it needs are gated per category).
    """
    states = ("valid", "other_category") if any_category else ("valid",)

    def rule(role: str, state: str) -> int:
        if role in fixed:
            return fixed[role]
        if role == "owner":
            return owner if owner is not None else ok
        if role == "clinician":
            return ok if state in states else 403
        return 403

    return authenticated(rule)


def _token_expect(role: str, state: str) -> int:
    if role == "anonymous":
        return 401
    if role == "clinician" and state == "suspended":
        return 403
    return 200


MATRIX: dict[tuple[str, str], tuple[Call, Expect]] = {
    ("GET", "/healthz"): (_get(lambda ctx: "/healthz"), public()),
    ("GET", "/readyz"): (_get(lambda ctx: "/readyz"), public()),
    # Not for API clients, whoever they are: only a loopback scraper or the metrics token.
    ("GET", "/metrics"): (_get(lambda ctx: "/metrics"), public(403)),
    ("GET", "/openapi.json"): (_get(lambda ctx: "/openapi.json"), public()),
    ("POST", "/v1/auth/challenge"): (
        lambda ctx, role: ctx.client.post(
            "/v1/auth/challenge", json={"identity_id": ctx.keys(role).id}
        ),
        public(),
    ),
    ("POST", "/v1/auth/token"): (_token, _token_expect),
    ("GET", "/v1/identities/me"): (
        _get(lambda ctx: "/v1/identities/me"),
        authenticated(public()),
    ),
    ("GET", "/v1/identities/{identity_id}"): (
        _get(lambda ctx: f"/v1/identities/{ctx.actors['clinician'].id}"),
        authenticated(public()),
    ),
    ("POST", "/v1/identities"): (
        _post_tx(lambda ctx: "/v1/identities", _enroll_tx),
        roles(201, "admin"),
    ),
    ("POST", "/v1/identities/{identity_id}/suspend"): (_suspend, roles(201, "admin")),
    ("POST", "/v1/identities/{identity_id}/reinstate"): (_reinstate, roles(201, "admin")),
    ("POST", "/v1/identities/{identity_id}/rotate-keys"): (_rotate_keys, roles(201, "admin")),
    ("GET", "/v1/identities/{identity_id}/keys"): (
        _get(lambda ctx: f"/v1/identities/{ctx.actors['clinician'].id}/keys"),
        authenticated(public()),
    ),
    ("POST", "/v1/patients"): (_register, public(201)),
    ("GET", "/v1/patients/{pseudonym}"): (_get(_patient_path("")), authenticated(public())),
    ("GET", "/v1/patients/{pseudonym}/records"): (
        _get(_patient_path("/records"), category=CATEGORY),
        permitted(200),
    ),
    ("GET", "/v1/patients/{pseudonym}/permissions"): (
        _get(_patient_path("/permissions")),
        authenticated(public()),
    ),
    ("GET", "/v1/patients/{pseudonym}/key-share"): (
        _get(_patient_path("/key-share")),
        permitted(200, owner=404, any_category=True),
    ),
    ("GET", "/v1/patients/{pseudonym}/audit"): (_get(_patient_path("/audit")), roles(200, "owner")),
    ("GET", "/v1/patients/{pseudonym}/access-requests"): (
        _get(_patient_path("/access-requests")),
        roles(200, "owner"),
    ),
    ("GET", "/v1/categories"): (_get(lambda ctx: "/v1/categories"), authenticated(public())),
    ("GET", "/v1/patients/{pseudonym}/keys"): (
        _get(_patient_path("/keys")),
        authenticated(public()),
    ),
    ("GET", "/v1/patients/{pseudonym}/keys/{category}/{period}"): (
        _get(
            lambda ctx: (
                f"/v1/patients/{ctx.pseudonym}/keys/{CATEGORY}/{ctx.now().strftime('%Y-%m')}"
            )
        ),
        authenticated(public()),
    ),
    ("POST", "/v1/patients/{pseudonym}/keys"): (
        _post_tx(_patient_path("/keys"), _publish_keys_tx),
        roles(201, "owner"),
    ),
    ("GET", "/v1/patients/{pseudonym}/rekey"): (
        _get(_patient_path("/rekey")),
        roles(200, "owner"),
    ),
    ("POST", "/v1/patients/{pseudonym}/rekey"): (_rekey, roles(422, "owner")),
    ("POST", "/v1/permissions"): (
        _post_tx(lambda ctx: "/v1/permissions", _grant_tx),
        roles(201, "owner"),
    ),
    ("POST", "/v1/permissions/{permission_id}/revoke"): (_revoke, roles(200, "owner")),
    ("POST", "/v1/key-shares"): (
        _post_tx(lambda ctx: "/v1/key-shares", _key_share_tx),
        roles(201, "owner"),
    ),
    ("POST", "/v1/access-requests"): (
        _post_tx(lambda ctx: "/v1/access-requests", _access_request_tx),
        roles(201, "clinician", "system", "auditor"),
    ),
    ("POST", "/v1/access-requests/{request_id}/answer"): (_answer_request, roles(200, "owner")),
    ("GET", "/v1/notifications/signing-key"): (
        _get(lambda ctx: "/v1/notifications/signing-key"),
        public(),
    ),
    ("POST", "/v1/notifications/webhooks"): (_add_webhook, authenticated(public(201))),
    ("GET", "/v1/notifications/webhooks"): (
        _get(lambda ctx: "/v1/notifications/webhooks"),
        authenticated(public()),
    ),
    ("DELETE", "/v1/notifications/webhooks/{endpoint_id}"): (
        _remove_webhook,
        authenticated(public(200)),
    ),
    # This gateway has no contact key: patients are told e-mail is not configured (503).
    ("PUT", "/v1/notifications/contact"): (_set_contact, roles(503, "owner", "other_patient")),
    ("GET", "/v1/notifications/contact"): (
        _get(lambda ctx: "/v1/notifications/contact"),
        roles(503, "owner", "other_patient"),
    ),
    ("DELETE", "/v1/notifications/contact"): (
        lambda ctx, role: ctx.client.delete("/v1/notifications/contact", headers=ctx.headers(role)),
        roles(404, "owner", "other_patient"),
    ),
    ("GET", "/v1/notifications/dead-letters"): (
        _get(lambda ctx: "/v1/notifications/dead-letters"),
        roles(200, "admin"),
    ),
    ("POST", "/v1/notifications/dead-letters/{delivery_id}/retry"): (
        lambda ctx, role: ctx.client.post(
            "/v1/notifications/dead-letters/none/retry", headers=ctx.headers(role)
        ),
        roles(404, "admin"),
    ),
    ("POST", "/v1/blobs"): (_upload_blob, permitted(201, owner=403, system=201)),
    ("POST", "/v1/records"): (_commit_record, permitted(201, system=201)),
    ("GET", "/v1/records/{record_id}"): (_get(_record_path("")), permitted(200)),
    ("GET", "/v1/records/{record_id}/proof"): (_get(_record_path("/proof")), permitted(200)),
    ("GET", "/v1/records/{record_id}/capsule"): (_get(_record_path("/capsule")), permitted(200)),
    ("GET", "/v1/records/{record_id}/body"): (_get(_record_path("/body")), permitted(200)),
    ("GET", "/v1/records/{record_id}/open"): (_get(_record_path("/open")), permitted(200)),
    ("GET", "/v1/records/{record_id}/open/body"): (_opened_body, permitted(200)),
    ("POST", "/v1/documents"): (_ingest, permitted(201, owner=403, system=201)),
    ("GET", "/v1/ledger/head"): (_get(lambda ctx: "/v1/ledger/head"), public()),
    ("GET", "/v1/ledger/checkpoint"): (_get(lambda ctx: "/v1/ledger/checkpoint"), public()),
    ("GET", "/v1/ledger/entries"): (
        _get(lambda ctx: "/v1/ledger/entries"),
        roles(200, "auditor", "admin"),
    ),
    ("GET", "/v1/ledger/blocks"): (
        _get(lambda ctx: "/v1/ledger/blocks"),
        roles(200, "auditor", "admin"),
    ),
    ("GET", "/v1/ledger/consistency"): (
        _get(lambda ctx: "/v1/ledger/consistency", old_size="1"),
        public(),
    ),
    # Break-glass: the owner sets its policy; an act on a patient who never opted in is
    # refused whoever asks (tests/gateway/test_break_glass.py covers opted-in patients).
    ("POST", "/v1/patients/{pseudonym}/break-glass-policy"): (
        _post_tx(_patient_path("/break-glass-policy"), _policy_tx),
        roles(201, "owner"),
    ),
    ("POST", "/v1/break-glass"): (
        _post_tx(lambda ctx: "/v1/break-glass", _break_glass_tx),
        roles(201),
    ),
    ("GET", "/v1/break-glass"): (
        _get(lambda ctx: "/v1/break-glass"),
        roles(200, "auditor", "admin"),
    ),
    ("GET", "/v1/break-glass/{session_id}"): (
        _get(lambda ctx: "/v1/break-glass/no-such-session"),
        authenticated(public(404)),
    ),
    ("POST", "/v1/break-glass/{session_id}/review"): (_review, roles(404, "auditor", "admin")),
    # Research: only a share right's grantee exports, only the study reads (none of the
    # roles here; tests/gateway/test_research.py covers both).
    ("POST", "/v1/study-exports/bodies"): (_export_body, authenticated(public(404))),
    ("POST", "/v1/study-exports"): (_export, roles(201)),
    ("GET", "/v1/studies/{study_id}/exports"): (
        _get(lambda ctx: "/v1/studies/study-matrix/exports"),
        roles(200),
    ),
    ("GET", "/v1/study-exports/{export_id}/capsule"): (
        _get(lambda ctx: "/v1/study-exports/no-such-export/capsule"),
        authenticated(public(404)),
    ),
    ("GET", "/v1/study-exports/{export_id}/body"): (
        _get(lambda ctx: "/v1/study-exports/no-such-export/body"),
        authenticated(public(404)),
    ),
    # The patient or an admin (with a reason) erases; nobody else, whatever its grants.
    ("POST", "/v1/records/{record_id}/erase"): (_erase_record, roles(200, "owner", "admin")),
    # Last: it erases every record of the owner, which the rows above read.
    ("POST", "/v1/patients/{pseudonym}/erase"): (_erase_patient, roles(200, "owner", "admin")),
}


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app answers: its OpenAPI operations and plain routes."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    for route in app.routes:
        if isinstance(route, Route) and not isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_has_a_row(app: FastAPI) -> None:
    routes = _routes(app)
    assert routes - MATRIX.keys() == set(), "add these routes to the authorization matrix"
    assert MATRIX.keys() - routes == set(), "these rows name routes that do not exist"


@pytest.mark.parametrize("state", STATES)
def test_route_role_state_matrix(world: World, state: str) -> None:
    ctx = _setup(world, state)
    mismatches = []
    for (method, path), (call, expect) in MATRIX.items():
        for role in ROLES:
            response = call(ctx, role)
            wanted = expect(role, state)
            if response.status_code != wanted:
                mismatches.append(
                    f"{method} {path} as {role}: {response.status_code} (wanted {wanted}) "
                    f"{response.text[:160]}"
                )
    assert not mismatches, "\n".join(mismatches)
