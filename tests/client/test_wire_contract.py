"""The SDK and the gateway agree on the wire: what one answers is what the other reads.

The gateway's side is its OpenAPI document; the SDK's side is its models and the members
it reads from each answer (`READS`). A member renamed, retyped or made optional on either
side fails here, and so does a problem type one side has and the other lacks.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

import ehrgate
import ehrgate.errors
import gateway.errors
from ehrgate.models import (
    AccessEvent,
    AccessRequest,
    BreakGlassSession,
    Delivery,
    Identity,
    IdentityKey,
    Patient,
    PendingDeletion,
    Permission,
    Receipt,
    Record,
    StudyExport,
    TreeHead,
    Webhook,
)
from envelope import IdentityKeys, SigningKey
from gateway import Settings, create_app
from ledger.wire import builders, problems, shapes
from ledger.wire.blocks import Block, Receipt as WireReceipt
from tests.client.samples import T1, record_tx

Schema = dict[str, Any]
STRINGS = tuple[str, ...]
BYTES = "application/octet-stream"
NOTE = "text/plain; charset=utf-8"

# What the SDK reads from each answer: a model for the whole answer, the members it reads
# (each with the type it reads it as), BYTES for a body it takes as it comes, or NOTE for
# a C2SP signed note it parses itself.
ERASED = {
    "scope": str,
    "pseudonym": str,
    "record_ids": STRINGS,
    "receipt": Receipt,
    "deleted": int,
    "pending": tuple[PendingDeletion, ...],
    "complete": bool,
}

READS: dict[tuple[str, str], Any] = {
    ("POST", "/v1/auth/challenge"): {"challenge": str, "audience": str},
    ("POST", "/v1/auth/token"): {"access_token": str, "expires_at": str},
    ("GET", "/v1/identities/me"): Identity,
    ("GET", "/v1/identities/{}"): Identity,
    ("POST", "/v1/identities"): {"receipt": Receipt},
    ("POST", "/v1/identities/{}/suspend"): {"receipt": Receipt},
    ("POST", "/v1/identities/{}/reinstate"): {"receipt": Receipt},
    ("POST", "/v1/identities/{}/rotate-keys"): {"receipt": Receipt},
    ("GET", "/v1/identities/{}/keys"): {"id": str, "keys": tuple[IdentityKey, ...]},
    ("POST", "/v1/patients"): {"patient": Patient, "receipt": Receipt},
    ("GET", "/v1/patients/{}"): Patient,
    ("GET", "/v1/patients/{}/records"): {"records": tuple[Record, ...]},
    ("GET", "/v1/patients/{}/permissions"): {"permissions": tuple[Permission, ...]},
    ("GET", "/v1/patients/{}/key-share"): {
        "record_public_key": str,
        "sealed_key": str,
        "scope": STRINGS | None,
    },
    ("GET", "/v1/patients/{}/audit"): {"events": tuple[AccessEvent, ...]},
    ("GET", "/v1/patients/{}/access-requests"): {"access_requests": tuple[AccessRequest, ...]},
    ("POST", "/v1/permissions"): {"permission": Permission, "receipt": Receipt},
    ("POST", "/v1/permissions/{}/revoke"): {"permission": Permission, "receipt": Receipt},
    ("POST", "/v1/key-shares"): {"receipt": Receipt},
    ("GET", "/v1/categories"): {"categories": STRINGS},
    ("GET", "/v1/patients/{}/keys"): {"keys": tuple[dict[str, str], ...]},
    ("POST", "/v1/patients/{}/keys"): {"receipt": Receipt},
    ("GET", "/v1/patients/{}/keys/{}/{}"): {
        "key": dict[str, Any],
        "entry": dict[str, Any],
        "receipt": Receipt,
    },
    ("POST", "/v1/access-requests"): {"access_request": AccessRequest, "receipt": Receipt},
    ("POST", "/v1/blobs"): {"sha256": str, "size": int, "locators": STRINGS},
    ("POST", "/v1/records"): {"record": Record, "receipt": Receipt},
    ("GET", "/v1/records/{}"): {
        "record": Record,
        "receipt": Receipt,
        "transaction": dict[str, Any] | None,
        "rekey": dict[str, Any] | None,
    },
    ("GET", "/v1/patients/{}/rekey"): {
        "generation": int,
        "started_at": int | None,
        "records": int,
        "remaining": int,
        "periods": tuple[dict[str, Any], ...],
        "shared_with": tuple[dict[str, Any], ...],
        "pending": tuple[dict[str, Any], ...],
    },
    ("POST", "/v1/patients/{}/rekey"): {"results": tuple[dict[str, Any], ...]},
    ("GET", "/v1/records/{}/capsule"): BYTES,
    ("POST", "/v1/records/{}/erase"): ERASED,
    ("POST", "/v1/patients/{}/erase"): ERASED,
    ("GET", "/v1/records/{}/body"): BYTES,
    ("GET", "/v1/records/{}/open"): {
        "record": Record,
        "receipt": Receipt,
        "transaction": dict[str, Any] | None,
        "rekey": dict[str, Any] | None,
        "consistency": dict[str, Any] | None,
        "checkpoint": str | None,
        "capsule": str,
        "key_share": dict[str, Any] | None,
        "access_entry": dict[str, Any],
        "ticket": str,
    },
    ("GET", "/v1/records/{}/open/body"): BYTES,
    ("GET", "/v1/ledger/head"): {
        "ledger_public_key": str,
        "tree_head": TreeHead | None,
        "checkpoint_key": str,
    },
    ("GET", "/v1/ledger/checkpoint"): NOTE,
    ("GET", "/v1/ledger/entries"): {
        "entries": tuple[dict[str, Any], ...],
        "next_start": int | None,
    },
    ("GET", "/v1/ledger/blocks"): {"blocks": tuple[TreeHead, ...], "next_start": int | None},
    ("GET", "/v1/ledger/consistency"): {"proof": STRINGS},
    ("POST", "/v1/access-requests/{}/answer"): {
        "access_request": AccessRequest,
        "receipt": Receipt,
    },
    ("POST", "/v1/notifications/webhooks"): Webhook,
    ("GET", "/v1/notifications/webhooks"): {"webhooks": tuple[Webhook, ...]},
    ("DELETE", "/v1/notifications/webhooks/{}"): {"removed": str},
    ("PUT", "/v1/notifications/contact"): {"email": str},
    ("DELETE", "/v1/notifications/contact"): {"removed": str},
    ("GET", "/v1/notifications/signing-key"): {"public_key": str},
    ("GET", "/v1/notifications/dead-letters"): {"deliveries": tuple[Delivery, ...]},
    ("POST", "/v1/notifications/dead-letters/{}/retry"): Delivery,
    ("POST", "/v1/patients/{}/break-glass-policy"): {"receipt": Receipt},
    ("POST", "/v1/break-glass"): {"session": BreakGlassSession, "receipt": Receipt},
    ("GET", "/v1/break-glass"): {"sessions": tuple[BreakGlassSession, ...]},
    ("GET", "/v1/break-glass/{}"): BreakGlassSession,
    ("POST", "/v1/break-glass/{}/review"): {"session": BreakGlassSession, "receipt": Receipt},
    ("POST", "/v1/study-exports/bodies"): {"locators": STRINGS},
    ("POST", "/v1/study-exports"): {"export": StudyExport, "receipt": Receipt},
    ("GET", "/v1/studies/{}/exports"): {"exports": tuple[StudyExport, ...]},
    ("GET", "/v1/study-exports/{}/capsule"): BYTES,
    ("GET", "/v1/study-exports/{}/body"): BYTES,
}

# The query parameters the SDK sends with each call that has any (ehrgate/_client/*.py);
# the gateway may require no other.
SENDS: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/blobs"): frozenset({"pseudonym", "category", "sha256"}),
    ("GET", "/v1/patients/{}/records"): frozenset({"category"}),
    ("GET", "/v1/records/{}/open"): frozenset({"cosignatures", "known_size"}),
    ("GET", "/v1/records/{}/open/body"): frozenset({"ticket"}),
    ("GET", "/v1/patients/{}/access-requests"): frozenset({"pending"}),
    ("GET", "/v1/patients/{}/rekey"): frozenset({"limit", "after"}),
    ("GET", "/v1/ledger/entries"): frozenset({"start", "limit"}),
    ("GET", "/v1/ledger/blocks"): frozenset({"start", "limit"}),
    ("GET", "/v1/ledger/consistency"): frozenset({"old_size", "new_size"}),
    ("GET", "/v1/break-glass"): frozenset({"status"}),
    ("POST", "/v1/study-exports/bodies"): frozenset({"permission_id"}),
}

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object"}


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Schema:
    settings = Settings(data_dir=tmp_path_factory.mktemp("contract") / "data")
    document: Schema = create_app(settings).openapi()
    return document


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _answer_schema(openapi: Schema, method: str, path: str) -> tuple[str, Schema]:
    templated = {_template(name): operations for name, operations in openapi["paths"].items()}
    assert path in templated, f"the SDK calls {method} {path}, which the gateway does not have"
    operation = templated[path].get(method.lower())
    assert operation is not None, f"the gateway has no {method} {path}"
    success = [code for code in operation["responses"] if code.startswith("2")]
    ((media_type, content),) = operation["responses"][success[0]]["content"].items()
    return media_type, content["schema"]


# --- the two sides' types, as JSON types --------------------------------------------------


def _resolve(openapi: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _sent(openapi: Schema, schema: Schema) -> dict[str, Schema]:
    """Each JSON type the gateway may send under *schema*, with its schema."""
    schema = _resolve(openapi, schema)
    if "anyOf" in schema:
        return {k: v for choice in schema["anyOf"] for k, v in _sent(openapi, choice).items()}
    assert "type" in schema, f"the gateway's schema {schema} says nothing of its type"
    return {schema["type"]: schema}


def _read(annotation: Any) -> dict[str, Any]:
    """Each JSON type the SDK reads as *annotation*, with what it reads inside it."""
    if isinstance(annotation, types.UnionType):
        return {k: v for choice in typing.get_args(annotation) for k, v in _read(choice).items()}
    if annotation is type(None):
        return {"null": None}
    if typing.get_origin(annotation) is tuple:
        return {"array": typing.get_args(annotation)[0]}
    if typing.get_origin(annotation) is dict:
        return {"object": None}
    if dataclasses.is_dataclass(annotation):
        return {"object": annotation}
    return {_JSON_TYPES[annotation]: None}


def _members(read: Any) -> dict[str, tuple[Any, bool]]:
    """The members the SDK reads from an object: their types, and whether it needs them."""
    if isinstance(read, dict):
        return {name: (kind, "null" not in _read(kind)) for name, kind in read.items()}
    hints = typing.get_type_hints(read)
    return {
        field.name: (
            hints[field.name],
            field.default is dataclasses.MISSING and "null" not in _read(hints[field.name]),
        )
        for field in dataclasses.fields(read)
    }


def _check(openapi: Schema, read: Any, schema: Schema, where: str) -> None:
    sent, accepted = (
        _sent(openapi, schema),
        _read(read) if not isinstance(read, dict) else {"object": read},
    )
    extra = set(sent) - set(accepted)
    assert not extra, f"{where}: the gateway may send {sorted(extra)}; the SDK reads {accepted}"
    for json_type, inner in accepted.items():
        if json_type == "array" and json_type in sent:
            _check(openapi, inner, sent["array"]["items"], f"{where}[]")
        elif json_type == "object" and inner is not None and json_type in sent:
            _check_members(openapi, inner, sent["object"], where)


def _check_members(openapi: Schema, read: Any, schema: Schema, where: str) -> None:
    properties, required = schema.get("properties", {}), set(schema.get("required", ()))
    for name, (kind, needed) in _members(read).items():
        assert name in properties, (
            f"{where}: the SDK reads {name!r}, which the gateway's {schema.get('title')} "
            f"does not have (it has {sorted(properties)})"
        )
        assert not needed or name in required, (
            f"{where}: the SDK needs {name!r}, which the gateway's {schema.get('title')} "
            "may leave out"
        )
        _check(openapi, kind, properties[name], f"{where}.{name}")


@pytest.mark.parametrize(("method", "path"), sorted(READS))
def test_the_sdk_reads_what_the_gateway_answers(openapi: Schema, method: str, path: str) -> None:
    media_type, schema = _answer_schema(openapi, method, path)
    read = READS[(method, path)]
    if read in (BYTES, NOTE):
        assert media_type == read, f"{method} {path} answers {media_type}"
        return
    assert media_type == "application/json", f"{method} {path} answers {media_type}"
    _check(openapi, read, schema, f"{method} {path}")


@pytest.mark.parametrize(("method", "path"), sorted(READS))
def test_the_sdk_sends_every_query_parameter_the_gateway_requires(
    openapi: Schema, method: str, path: str
) -> None:
    templated = {_template(name): operations for name, operations in openapi["paths"].items()}
    parameters = templated[path][method.lower()].get("parameters", [])
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    sent = SENDS.get((method, path), frozenset())
    required = {name for name, p in query.items() if p.get("required")}
    assert required <= sent, f"{method} {path} requires {sorted(required - sent)}"
    assert sent <= set(query), f"{method} {path} takes no {sorted(sent - set(query))}"


def test_every_gateway_call_the_sdk_makes_is_in_the_contract() -> None:
    sdk = Path(ehrgate.__file__).parent
    sources = [sdk / "_http.py", *sorted((sdk / "_client").glob("*.py"))]
    called = {
        _template(literal)
        for source in sources
        for literal in re.findall(r"""["'](/v1/[^"']*)["']""", source.read_text())
        if not literal.endswith("/")
    }
    assert called == {path for _, path in READS}


def test_a_renamed_member_is_caught() -> None:
    schema = {
        "type": "object",
        "title": "PatientOut",
        "properties": {
            "pseudonym": {"type": "string"},
            "identity": {"type": "string"},
            "record_public_key": {"type": "string"},
        },
        "required": ["pseudonym", "identity", "record_public_key"],
    }
    with pytest.raises(AssertionError, match="reads 'identity_id'"):
        _check({}, Patient, schema, "GET /v1/patients/{}")


# --- the wire layer's shapes --------------------------------------------------------------


def _body_members(tx_body: dict[str, Any]) -> set[str]:
    return set(tx_body) - set(shapes.COMMON_TX_FIELDS)


def test_the_builders_fill_the_bodies_the_shapes_name() -> None:
    signer = IdentityKeys.generate("hospital", "system")
    record = record_tx(signer, on_behalf_of="lab")
    assert _body_members(record.body) == set(shapes.RECORD_TX.names)
    grant = builders.grant(
        signer,
        pseudonym="ab" * 32,
        grantee="dr",
        rights=["read"],
        categories="all",
        not_before=T1,
        not_after="2031-01-01T00:00:00.000000Z",
        study_id="s",
        anonymise=True,
        study_pseudonym="5e" * 32,
        study_secret=b"sealed",
    )
    assert _body_members(grant.body) == set(shapes.GRANT_TX.names)


def test_blocks_and_receipts_write_the_shapes_members() -> None:
    block = Block.signed(
        SigningKey.generate(),
        height=0,
        previous_hash=bytes(32),
        tree_size=1,
        root=bytes(32),
        timestamp=T1,
    )
    assert tuple(block.to_json()) == shapes.BLOCK.names
    assert tuple(WireReceipt(0, "00" * 32, block, []).to_json()) == shapes.RECEIPT.names


@pytest.mark.parametrize(
    ("shape", "schema_name"),
    [
        (shapes.BLOCK, "TreeHead"),
        (shapes.RECEIPT, "ReceiptOut"),
        (shapes.RECORD, "RecordOut"),
        (shapes.PERMISSION, "PermissionOut"),
    ],
)
def test_the_gateway_answers_the_shapes_members(
    openapi: Schema, shape: shapes.Shape, schema_name: str
) -> None:
    schema = openapi["components"]["schemas"][schema_name]
    assert set(schema["properties"]) == set(shape.names)
    assert set(shape.required) <= set(schema["required"])


# --- problem types --------------------------------------------------------------------------


def _gateway_errors(
    root: type[gateway.errors.GatewayError],
) -> list[type[gateway.errors.GatewayError]]:
    found = [root]
    for child in root.__subclasses__():
        found.extend(_gateway_errors(child))
    return found


def test_the_gateway_answers_every_problem_type_of_the_table_and_no_other() -> None:
    answered = {
        (error.status, error.slug, error.title)
        for error in _gateway_errors(gateway.errors.GatewayError)
        if error.__module__ == "gateway.errors"
    }
    assert answered == set(problems.PROBLEM_TYPES)


def test_the_sdk_maps_every_problem_type_and_no_other() -> None:
    assert set(ehrgate.errors.ERROR_FOR_PROBLEM) == set(problems.PROBLEM_TYPES)
    slugs = [problem.slug for problem in problems.PROBLEM_TYPES]
    assert len(slugs) == len(set(slugs))


# --- the SDK's exception tree ---------------------------------------------------------------


def _drawn_tree() -> dict[str, str | None]:
    """Each class the ehrgate.errors docstring draws, with the class drawn above it."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (ehrgate.errors.__doc__ or "").splitlines():
        found = re.match(r"^([ │├└─]*)([A-Z][A-Za-z]+)(?:\s{2,}|$)", line)
        if found is None:
            continue
        depth = len(found.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[found.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, found.group(2)))
    return parents


def test_the_sdk_raises_only_the_tree_its_errors_module_draws() -> None:
    modules = [
        importlib.import_module(f"ehrgate.{name}")
        for name in (
            "errors",
            "models",
            "client",
            "verification",
            "trust",
            "_http",
            "_client.session",
            "_client.trust",
            "_client.directory",
            "_client.consent",
            "_client.upload",
            "_client.fetch",
        )
    ]
    defined = {
        cls
        for module in modules
        for cls in vars(module).values()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == module.__name__
    }
    assert all(issubclass(cls, ehrgate.errors.EhrgateError) for cls in defined)
    drawn = _drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in defined}
    for cls in defined:
        parent = cls.__bases__[0]
        expected = None if cls is ehrgate.errors.EhrgateError else parent.__name__
        assert drawn[cls.__name__] == expected, cls.__name__
