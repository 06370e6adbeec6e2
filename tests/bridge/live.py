"""A live bridge: real uvicorn on 127.0.0.1 in front of a live gateway, for the e2e tests.

Its token verifier is a test fixture (fixed tokens for fixed actors); every FHIR JSON
response it sends is recorded, for the independent validator (`validator.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.actors import Actor
from bridge.app import create_bridge_app
from bridge.errors import AuthFailed
from bridge.hl7v2 import MllpListener
from bridge.service import Bridge
from bridge.settings import BridgeSettings
from ehrgate.embedded import free_port, serve_app

READ_ALL = frozenset({"system/*.rs", "user/*.rs"})
WRITE_DOCS = frozenset({"system/DocumentReference.crs", "system/Binary.r", "system/List.s"})
PASSPHRASE = "correct horse battery staple"


class FixedTokens:
    """A test-only TokenVerifier: each known token is one actor."""

    def __init__(self, actors: dict[str, Actor]) -> None:
        self.actors = actors

    def verify(self, token: str) -> Actor:
        try:
            return self.actors[token]
        except KeyError:
            raise AuthFailed("unknown test token") from None


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


@dataclass
class Recorder:
    """Records every response of the app it wraps (an ASGI middleware)."""

    app: Any
    responses: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"body": []}

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = dict(message.get("headers", []))
                state["type"] = headers.get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                state["body"].append(message.get("body", b""))
                if not message.get("more_body"):
                    self.responses.append(
                        Recorded(
                            scope["method"],
                            scope["path"],
                            state["status"],
                            state["type"],
                            b"".join(state["body"]),
                        )
                    )
            await send(message)

        await self.app(scope, receive, recording_send)


@dataclass
class LiveBridge:
    url: str
    settings: BridgeSettings
    recorder: Recorder
    service: Bridge
    mllp: MllpListener | None = None

    @property
    def fhir(self) -> str:
        return f"{self.url}/fhir"


@contextmanager
def live_bridge(
    settings: BridgeSettings, verifier: FixedTokens | None = None, *, port: int | None = None
) -> Iterator[LiveBridge]:
    """The bridge served by uvicorn on *port* (default: a free one), with the token verifiers
    its settings configure and *verifier* after them."""
    port = port or free_port()
    app = create_bridge_app(settings, [verifier] if verifier else [])
    recorder = Recorder(app)
    with serve_app(recorder, port, "the bridge") as url:
        yield LiveBridge(url, settings, recorder, app.state.bridge, app.state.mllp)


def bridge_settings(directory: Path, gateway_url: str, **extra: Any) -> BridgeSettings:
    values: dict[str, Any] = {
        "gateway_url": gateway_url,
        "hospital_id": "st-elsewhere",
        "system_identity": "aria-export",
        "auditor_identity": "auditor-1",
        "data_dir": directory,
        "passphrase": PASSPHRASE,
        "mrn_system": "urn:oid:1.2.3.4.5",
        "max_document_bytes": 256 * 1024,
        "page_size": 20,
        **extra,
    }
    return BridgeSettings(**values)
