"""The Kubo RPC API as the IPFS store speaks it: POST calls under ``/api/v0/``, answers as
JSON or newline-delimited JSON, and the one place where its errors become storage errors.

Errors come back as HTTP 500 (400 for a malformed call) with a JSON body
``{"Message": ..., "Code": ..., "Type": "error"}``; an error after streaming has begun comes
as such an object in the stream. Both raise ``KuboError``, which ``map_errors`` translates
together with httpx's own errors.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from storage.errors import (
    BlobNotFound,
    InvalidLocator,
    StorageError,
    StoreMisconfigured,
    StoreUnavailable,
)

_NOT_FOUND = ("not found", "could not find", "not pinned", "no link named", "is not pinned")


class KuboError(Exception):
    """An error answer of the Kubo RPC API (internal: mapped by ``map_errors``)."""

    def __init__(self, status: int, message: str, endpoint: str) -> None:
        super().__init__(f"{endpoint}: HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.endpoint = endpoint


@contextlib.contextmanager
def map_errors(store: str, api: str, what: str) -> Iterator[None]:
    """Translate httpx errors and Kubo error answers into the storage tree (the one place)."""
    try:
        yield
    except StorageError:
        raise
    except KuboError as exc:
        raise _kubo_error(exc, store, api, what) from exc
    except httpx.TimeoutException as exc:
        raise StoreUnavailable(
            f"store {store!r}: Kubo at {api} did not answer in time during {what}", store=store
        ) from exc
    except httpx.TransportError as exc:
        raise StoreUnavailable(
            f"store {store!r}: cannot reach Kubo at {api} during {what} ({exc}); "
            "check that the daemon is running and the URL's host and port",
            store=store,
        ) from exc
    except httpx.HTTPError as exc:
        raise StoreUnavailable(f"store {store!r}: {what} failed: {exc}", store=store) from exc
    except json.JSONDecodeError as exc:
        raise StoreMisconfigured(
            f"store {store!r}: {api} answered {what} with something that is not JSON; "
            "is it really a Kubo RPC API?",
            store=store,
        ) from exc


def _kubo_error(exc: KuboError, store: str, api: str, what: str) -> StorageError:
    lowered = exc.message.lower()
    if exc.status == 500 and any(marker in lowered for marker in _NOT_FOUND):
        return BlobNotFound(f"store {store!r} has no {what}", store=store)
    if exc.status in (400, 500) and ("invalid cid" in lowered or "invalid path" in lowered):
        return InvalidLocator(
            f"store {store!r} rejected the CID of {what}: {exc.message}", store=store
        )
    if exc.status in (401, 403):
        return StoreMisconfigured(
            f"store {store!r}: the Kubo RPC API at {api} refused access ({exc.message}); "
            "check the user:password in the URL or API.HTTPHeaders/Origin settings",
            store=store,
        )
    if exc.status in (400, 404, 405):
        return StoreMisconfigured(
            f"store {store!r}: {api} does not answer like a Kubo RPC API "
            f"({exc}); check the host and port (the RPC port, usually 5001, "
            "not the gateway port 8080)",
            store=store,
        )
    return StoreUnavailable(f"store {store!r}: Kubo failed on {what}: {exc.message}", store=store)


def raise_for_answer(response: httpx.Response, endpoint: str) -> None:
    """KuboError unless ``response`` is a 200; the message is Kubo's own where it sent one."""
    if response.status_code == 200:
        return
    body = response.read()
    message = body.decode("utf-8", "replace").strip() or response.reason_phrase
    with contextlib.suppress(ValueError):
        decoded = json.loads(body)
        if isinstance(decoded, dict) and isinstance(decoded.get("Message"), str):
            message = decoded["Message"]
    raise KuboError(response.status_code, message, endpoint)


def json_lines(lines: Iterable[str], endpoint: str) -> Iterator[dict[str, Any]]:
    """Objects of a newline-delimited JSON answer; an error object raises KuboError."""
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        if not isinstance(item, dict):
            raise json.JSONDecodeError("expected a JSON object", line, 0)
        if item.get("Type") == "error" and "Message" in item:
            raise KuboError(500, str(item["Message"]), endpoint)
        yield item


class Kubo:
    """An httpx client for one node's RPC API (``<api>/api/v0/``)."""

    def __init__(
        self,
        api: str,
        *,
        transport: httpx.BaseTransport | None,
        timeout: float,
        connect_timeout: float,
        auth: tuple[str, str] | None,
    ) -> None:
        self._http = httpx.Client(
            base_url=f"{api}/api/v0/",
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            auth=auth,
        )

    def call(self, endpoint: str, **params: str) -> dict[str, Any]:
        """A non-streaming RPC call; returns the decoded JSON answer."""
        response = self._http.post(endpoint, params=params)
        raise_for_answer(response, endpoint)
        answer = response.json()
        if not isinstance(answer, dict):
            raise json.JSONDecodeError("expected a JSON object", response.text, 0)
        return answer

    def open(
        self,
        endpoint: str,
        params: dict[str, str],
        *,
        content: Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Start a streaming call; the caller closes the response (it is closed here if
        the answer is an error)."""
        request = self._http.build_request(
            "POST", endpoint, params=params, content=content, headers=headers
        )
        response = self._http.send(request, stream=True)
        try:
            raise_for_answer(response, endpoint)
        except BaseException:
            response.close()
            raise
        return response

    def lines(
        self,
        endpoint: str,
        params: dict[str, str],
        *,
        content: Iterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """A streaming call whose newline-delimited JSON answer is read to its end."""
        response = self.open(endpoint, params, content=content, headers=headers)
        try:
            return list(json_lines(response.iter_lines(), endpoint))
        finally:
            response.close()

    def close(self) -> None:
        self._http.close()
