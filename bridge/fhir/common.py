"""What the FHIR routes share: the bridge, the base URL, bounded bodies, Bundles."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from anyio import to_thread
from fastapi import Request

from bridge.errors import InvalidDocument
from bridge.fhir.outcome import FhirError
from bridge.service import Bridge

T = TypeVar("T")


def bridge_of(request: Request) -> Bridge:
    found: Bridge = request.app.state.bridge
    return found


def base_url(request: Request) -> str:
    configured = bridge_of(request).settings.public_url
    if configured:
        return configured.rstrip("/") + "/fhir"
    return str(request.base_url).rstrip("/") + "/fhir"


async def in_thread(call: Callable[[], T]) -> T:
    """Run a blocking SDK call off the event loop."""
    return await to_thread.run_sync(call)


async def body_chunks(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body as it arrives, refused with 413 once it passes *limit* bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise FhirError(413, "too-costly", f"the request is larger than {limit} bytes")
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FhirError(413, "too-costly", f"the request is larger than {limit} bytes")
        if chunk:
            yield chunk


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it passes *limit* bytes."""
    return b"".join([chunk async for chunk in body_chunks(request, limit)])


def require_fhir_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/fhir+json", "application/json"):
        raise FhirError(415, "not-supported", "send the resource as application/fhir+json")


async def read_resource(request: Request, limit: int) -> Any:
    require_fhir_json(request)
    raw = await read_body(request, limit)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidDocument(f"the body is not JSON: {exc}") from exc


async def search_params(request: Request, limit: int = 64 * 1024) -> dict[str, list[str]]:
    """Query parameters, plus a form body for POST `_search`."""
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    if request.method == "POST":
        raw = await read_body(request, limit)
        try:
            form = parse_qs(raw.decode("utf-8"), keep_blank_values=False, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise InvalidDocument("the _search form body is not UTF-8") from exc
        for key, values in form.items():
            params.setdefault(key, []).extend(values)
    return params


def searchset(
    entries: list[dict[str, Any]],
    base: str,
    total: int,
    links: list[dict[str, str]] | None = None,
    outcome: dict[str, Any] | None = None,
) -> dict[str, Any]:
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total}
    if links:
        bundle["link"] = links
    found = [
        {
            "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in entries
    ]
    if outcome is not None:
        found.append({"resource": outcome, "search": {"mode": "outcome"}})
    if found:
        bundle["entry"] = found
    return bundle
